//! The life of a signing key, decided from its stored times and the clock alone: every
//! instance that reads the same rows agrees on which key signs, with no coordination.
//!
//! ```text
//!   created_at         activate_at            retire_at             expire_at
//!       |---- next --------|------ active --------|----- retiring ------|---- expired
//!       |<------------------------- published in the JWKS ------------->|
//!                          |<----- signs -------->|
//! ```
//!
//! A rotation adds a key that is published at once but signs only after a publish delay
//! longer than any instance or app keeps an old copy of the key set; the key it replaces stops
//! signing at that moment and stays published until the last token it signed has expired.

use crate::Timestamp;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signing (and published).
    Active,
    /// No longer signing; published until the tokens it signed have expired.
    Retiring,
    /// Neither signing nor published.
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Expired => "expired",
        }
    }
}

/// When a key changes state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySchedule {
    /// Each rotation adds the next number. Unique: of two rotations at once, one fails.
    pub generation: i64,
    /// Published from this moment.
    pub created_at: Timestamp,
    /// Signs from this moment.
    pub activate_at: Timestamp,
    /// Stops signing at this moment; unset while no newer key is scheduled.
    pub retire_at: Option<Timestamp>,
    /// Stops being published at this moment; unset while no newer key is scheduled.
    pub expire_at: Option<Timestamp>,
}

impl KeySchedule {
    /// The first key of a database that has none: it signs at once, as nothing else can.
    pub fn first(now: Timestamp) -> Self {
        Self {
            generation: 1,
            created_at: now,
            activate_at: now,
            retire_at: None,
            expire_at: None,
        }
    }

    pub fn state(&self, now: Timestamp) -> KeyState {
        if now < self.activate_at {
            KeyState::Next
        } else if self.retire_at.is_none_or(|t| now < t) {
            KeyState::Active
        } else if self.expire_at.is_none_or(|t| now < t) {
            KeyState::Retiring
        } else {
            KeyState::Expired
        }
    }

    pub fn is_published(&self, now: Timestamp) -> bool {
        self.state(now) != KeyState::Expired
    }

    /// Whether the key signs now or will later (so its private half is worth loading).
    pub fn signs_now_or_later(&self, now: Timestamp) -> bool {
        matches!(self.state(now), KeyState::Next | KeyState::Active)
    }
}

/// A rotation planned at one moment: the new key's schedule, and the end of the signing and
/// of the publication of the key that was the newest until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub new: KeySchedule,
    pub previous_retire_at: Timestamp,
    pub previous_expire_at: Timestamp,
}

/// Plans the rotation that follows `latest` (the key of the highest generation) at `now`.
///
/// The new key signs from `now + publish_delay`, and never before `latest` starts to (so keys
/// sign in generation order even if the delay was shortened between two rotations); `latest`
/// stops signing then and stays published for `token_lifetime` more.
pub fn plan_rotation(
    latest: &KeySchedule,
    now: Timestamp,
    publish_delay: Duration,
    token_lifetime: Duration,
) -> Rotation {
    let activate_at = now.plus(publish_delay).max(latest.activate_at);
    Rotation {
        new: KeySchedule {
            generation: latest.generation + 1,
            created_at: now,
            activate_at,
            retire_at: None,
            expire_at: None,
        },
        previous_retire_at: activate_at,
        previous_expire_at: activate_at.plus(token_lifetime),
    }
}

/// The key that signs at `now`: the newest active one. When none is active yet (the first key,
/// seen by an instance whose clock runs a little behind the one that created it), the next key
/// that will be.
pub fn signing_key<K>(
    keys: &[K],
    schedule: impl Fn(&K) -> &KeySchedule,
    now: Timestamp,
) -> Option<&K> {
    let state = |k: &&K| schedule(k).state(now);
    let active = keys
        .iter()
        .filter(|k| state(k) == KeyState::Active)
        .max_by_key(|k| schedule(k).generation);
    active.or_else(|| {
        keys.iter()
            .filter(|k| state(k) == KeyState::Next)
            .min_by_key(|k| schedule(k).activate_at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000 + minutes * 60_000)
    }

    /// Key 1 created at minute 0; rotated at minute 100 with a 10-minute publish delay and
    /// 16-minute tokens (15 minutes plus leeway).
    fn rotated() -> (KeySchedule, KeySchedule) {
        let first = KeySchedule::first(at(0));
        let plan = plan_rotation(&first, at(100), 10 * MIN, 16 * MIN);
        let old = KeySchedule {
            retire_at: Some(plan.previous_retire_at),
            expire_at: Some(plan.previous_expire_at),
            ..first
        };
        (old, plan.new)
    }

    #[test]
    fn a_rotated_key_goes_from_next_to_active_and_the_old_one_from_active_to_retiring_to_expired() {
        let (old, new) = rotated();
        let states = |t| (old.state(t), new.state(t));
        use KeyState::*;
        assert_eq!(states(at(100)), (Active, Next));
        assert_eq!(states(at(109)), (Active, Next));
        assert_eq!(states(at(110)), (Retiring, Active));
        assert_eq!(states(at(125)), (Retiring, Active));
        assert_eq!(states(at(126)), (Expired, Active));
        assert!(new.is_published(at(100)), "published from its creation");
        assert!(old.is_published(at(125)) && !old.is_published(at(126)));
    }

    #[test]
    fn the_signing_key_changes_only_at_the_new_keys_activation() {
        let (old, new) = rotated();
        let keys = [old, new];
        let signer = |t| signing_key(&keys, |k| k, t).map(|k| k.generation);
        assert_eq!(signer(at(100)), Some(1));
        assert_eq!(signer(at(110).minus(Duration::from_millis(1))), Some(1));
        assert_eq!(signer(at(110)), Some(2));
        assert_eq!(signer(at(1_000)), Some(2));
    }

    #[test]
    fn a_second_rotation_during_the_delay_queues_behind_the_first() {
        let (old, next) = rotated();
        let plan = plan_rotation(&next, at(105), 10 * MIN, 16 * MIN);
        let next = KeySchedule {
            retire_at: Some(plan.previous_retire_at),
            expire_at: Some(plan.previous_expire_at),
            ..next
        };
        let keys = [old, next, plan.new];
        let signer = |t| signing_key(&keys, |k| k, t).map(|k| k.generation);
        assert_eq!(signer(at(109)), Some(1));
        assert_eq!(signer(at(110)), Some(2));
        assert_eq!(signer(at(115)), Some(3));
        assert_eq!(next.state(at(115)), KeyState::Retiring);
    }

    #[test]
    fn a_shortened_delay_never_lets_a_newer_key_sign_before_an_older_one() {
        let (_, next) = rotated();
        let plan = plan_rotation(&next, at(101), MIN, 16 * MIN);
        assert_eq!(plan.new.activate_at, next.activate_at);
        assert_eq!(
            plan.previous_retire_at, next.activate_at,
            "next never signs"
        );
    }

    #[test]
    fn the_first_key_signs_even_for_a_clock_that_runs_behind() {
        let first = [KeySchedule::first(at(0))];
        assert_eq!(first[0].state(at(0).minus(MIN)), KeyState::Next);
        assert!(signing_key(&first, |k| k, at(0).minus(MIN)).is_some());
        assert!(signing_key::<KeySchedule>(&[], |k| k, at(0)).is_none());
    }
}
