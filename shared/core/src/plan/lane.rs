//! The queue's priority lanes. The store keeps a job's lane as its number.

/// Priority lanes: each drain gives every lane its own share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// 1:1 and groups under 100 members; receipts.
    High = 0,
    /// Groups under 2,000 members, API/app messages.
    Medium = 1,
    /// Larger groups, control.
    Low = 2,
    /// Push deliveries: claimed only by the `push-notify` component (they need
    /// outbound HTTP), never by the worker's lane rounds.
    Push = 3,
    /// Webhook deliveries: claimed only by the `webhooks` component (outbound HTTP
    /// to the subscribers), never by the worker's lane rounds.
    Webhook = 4,
}

impl Lane {
    /// The lanes the worker drains, in priority order.
    pub const ALL: [Lane; 3] = [Lane::High, Lane::Medium, Lane::Low];

    /// The lane of work for a group of `members`.
    pub fn for_group(members: i64) -> Lane {
        match members {
            m if m < 100 => Lane::High,
            m if m < 2000 => Lane::Medium,
            _ => Lane::Low,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lane::High => "high",
            Lane::Medium => "medium",
            Lane::Low => "low",
            Lane::Push => "push",
            Lane::Webhook => "webhook",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_take_the_lane_of_their_size() {
        assert_eq!(Lane::for_group(99), Lane::High);
        assert_eq!(Lane::for_group(100), Lane::Medium);
        assert_eq!(Lane::for_group(1999), Lane::Medium);
        assert_eq!(Lane::for_group(2000), Lane::Low);
        assert_eq!(Lane::Webhook as i64, 4);
    }
}
