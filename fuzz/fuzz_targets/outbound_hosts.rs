#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| courier_fuzz::outbound_hosts(data));
