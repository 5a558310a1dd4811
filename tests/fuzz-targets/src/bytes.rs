//! Reading a fuzz input: a few leading bytes choose a mode and small numbers, the rest
//! is the text or body under test.

/// A cursor over the fuzz input. Reads past the end give zeros, so every input is a
/// complete test case.
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data }
    }

    pub(crate) fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&first, rest)) => {
                self.data = rest;
                first
            }
            None => 0,
        }
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// The bytes up to the next `\n` (dropped), or all that is left.
    pub(crate) fn line(&mut self) -> &'a [u8] {
        match self.data.iter().position(|&b| b == b'\n') {
            Some(at) => {
                let line = &self.data[..at];
                self.data = &self.data[at + 1..];
                line
            }
            None => self.rest(),
        }
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// The input as text: invalid UTF-8 is replaced, so the text parsers see every input.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
