//! The linking decision (DESIGN §4): given who the provider says this is, who is signed in, and
//! which existing users could be the same person, decide what happens. Pure: the caller loads
//! the facts, this decides, the caller writes the result in one transaction.

use crate::UserId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    #[default]
    Disabled,
    Automatic,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchBy {
    Email,
    Phone,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnAmbiguity {
    #[default]
    Manual,
    Conflict,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictAction {
    #[default]
    Error,
    CreateUser,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPolicy {
    pub resolution: Resolution,
    pub on_ambiguity: OnAmbiguity,
    pub conflict_action: ConflictAction,
    /// Whether the manual (select + verify) flow can run in this deployment.
    pub manual_available: bool,
}

/// A user who might be the person behind a new identity, with the facts that decide whether it
/// may be linked automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub user_id: UserId,
    /// One of the user's VERIFIED emails/phones equals one of the identity's verified claims from
    /// a provider trusted for that claim. False: the match involves an unverified side.
    pub verified_match: bool,
    pub disabled: bool,
    pub is_admin: bool,
    /// The user already has an identity at this provider (with another subject).
    pub has_identity_at_provider: bool,
    /// The person could prove owning this account: it has a password, or a verified email
    /// (phone) and this deployment can send email (SMS). Nobody can pick an account otherwise.
    pub can_prove: bool,
}

impl Candidate {
    fn auto_linkable(&self) -> bool {
        self.verified_match && !self.disabled && !self.is_admin && !self.has_identity_at_provider
    }

    fn manually_linkable(&self) -> bool {
        !self.disabled && !self.has_identity_at_provider && self.can_prove
    }
}

/// The facts about one callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInput {
    /// The user this (provider, subject) is already linked to, and whether that user is disabled.
    pub linked_user: Option<(UserId, bool)>,
    /// The signed-in user when the flow is a "connect another provider" flow.
    pub connect_user: Option<UserId>,
    /// The provider may only be used to connect, never to sign in.
    pub provider_link_only: bool,
    pub candidates: Vec<Candidate>,
}

/// The result recorded in audit events, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Complete,
    Initiated,
    Skipped,
    Conflict,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Initiated => "initiated",
            Outcome::Skipped => "skipped",
            Outcome::Conflict => "conflict",
        }
    }
}

/// Why, in a word an operator can grep for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    AlreadyLinked,
    Connected,
    AlreadyConnected,
    LinkingDisabled,
    NoCandidates,
    /// Users matched, and one was left out because it already has an identity at this
    /// provider (another account there: never merged on an address).
    CandidateHasProviderIdentity,
    /// Users matched, all disabled.
    CandidateDisabled,
    /// Users matched, none of them linkable: not verified on both sides for an automatic
    /// link, and nothing to prove ownership with for a manual one.
    NoProvableCandidate,
    SingleVerifiedMatch,
    AmbiguousMatch,
    UnverifiedMatchOnly,
    ManualResolution,
    IdentityOwnedByAnotherUser,
    UserDisabled,
    LinkOnlyProvider,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AlreadyLinked => "already_linked",
            Reason::Connected => "connected",
            Reason::AlreadyConnected => "already_connected",
            Reason::LinkingDisabled => "linking_disabled",
            Reason::NoCandidates => "no_candidates",
            Reason::CandidateHasProviderIdentity => "candidate_has_provider_identity",
            Reason::CandidateDisabled => "candidate_disabled",
            Reason::NoProvableCandidate => "no_provable_candidate",
            Reason::SingleVerifiedMatch => "single_verified_match",
            Reason::AmbiguousMatch => "ambiguous_match",
            Reason::UnverifiedMatchOnly => "unverified_match_only",
            Reason::ManualResolution => "manual_resolution",
            Reason::IdentityOwnedByAnotherUser => "identity_owned_by_another_user",
            Reason::UserDisabled => "user_disabled",
            Reason::LinkOnlyProvider => "link_only_provider",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Sign in the user the identity is linked to.
    LogIn { user: UserId, reason: Reason },
    /// Link the identity to this existing user, then sign them in.
    Link { user: UserId, reason: Reason },
    /// Create a new user with this identity.
    CreateUser { reason: Reason },
    /// Let the person choose among these users and prove ownership.
    Manual {
        candidates: Vec<UserId>,
        reason: Reason,
    },
    /// Refuse: nothing is written, the person sees an error.
    Refuse { reason: Reason },
}

impl Decision {
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::LogIn { .. } | Decision::Link { .. } => Outcome::Complete,
            Decision::CreateUser { .. } => Outcome::Skipped,
            Decision::Manual { .. } => Outcome::Initiated,
            Decision::Refuse { .. } => Outcome::Conflict,
        }
    }

    pub fn reason(&self) -> Reason {
        match self {
            Decision::LogIn { reason, .. }
            | Decision::Link { reason, .. }
            | Decision::CreateUser { reason }
            | Decision::Manual { reason, .. }
            | Decision::Refuse { reason } => *reason,
        }
    }
}

pub fn decide(input: &LinkInput, policy: &LinkPolicy) -> Decision {
    // Connect intent: the identity goes to the signed-in user and nobody else.
    if let Some(me) = &input.connect_user {
        return match &input.linked_user {
            Some((owner, _)) if owner == me => Decision::LogIn {
                user: me.clone(),
                reason: Reason::AlreadyConnected,
            },
            Some(_) => Decision::Refuse {
                reason: Reason::IdentityOwnedByAnotherUser,
            },
            None => Decision::Link {
                user: me.clone(),
                reason: Reason::Connected,
            },
        };
    }
    if input.provider_link_only {
        return Decision::Refuse {
            reason: Reason::LinkOnlyProvider,
        };
    }
    if let Some((owner, disabled)) = &input.linked_user {
        return if *disabled {
            Decision::Refuse {
                reason: Reason::UserDisabled,
            }
        } else {
            Decision::LogIn {
                user: owner.clone(),
                reason: Reason::AlreadyLinked,
            }
        };
    }
    match policy.resolution {
        Resolution::Disabled => Decision::CreateUser {
            reason: Reason::LinkingDisabled,
        },
        Resolution::Manual => manual_or_create(&input.candidates, policy, Reason::ManualResolution),
        Resolution::Automatic => automatic(&input.candidates, policy),
    }
}

fn automatic(candidates: &[Candidate], policy: &LinkPolicy) -> Decision {
    if candidates.is_empty() {
        return Decision::CreateUser {
            reason: Reason::NoCandidates,
        };
    }
    let auto: Vec<&Candidate> = candidates.iter().filter(|c| c.auto_linkable()).collect();
    // Exactly one user matches, and that match is verified on both sides and eligible.
    if candidates.len() == 1 && auto.len() == 1 {
        return Decision::Link {
            user: auto[0].user_id.clone(),
            reason: Reason::SingleVerifiedMatch,
        };
    }
    if auto.is_empty() {
        // Only unverified, disabled, privileged or already-linked matches: never link on them
        // automatically. The person may still prove ownership when manual linking is available.
        return manual_or_create(candidates, policy, Reason::UnverifiedMatchOnly);
    }
    match policy.on_ambiguity {
        OnAmbiguity::Manual if policy.manual_available => {
            manual_or_create(candidates, policy, Reason::AmbiguousMatch)
        }
        _ => conflict(policy, Reason::AmbiguousMatch),
    }
}

fn manual_or_create(candidates: &[Candidate], policy: &LinkPolicy, reason: Reason) -> Decision {
    let eligible: Vec<UserId> = candidates
        .iter()
        .filter(|c| c.manually_linkable())
        .map(|c| c.user_id.clone())
        .collect();
    if eligible.is_empty() {
        // Nobody could prove an ambiguous match: the operator's conflict rule still decides.
        return if reason == Reason::AmbiguousMatch {
            conflict(policy, reason)
        } else {
            Decision::CreateUser {
                reason: left_out(candidates),
            }
        };
    }
    if policy.manual_available {
        Decision::Manual {
            candidates: eligible,
            reason,
        }
    } else if reason == Reason::AmbiguousMatch {
        conflict(policy, reason)
    } else {
        Decision::CreateUser { reason }
    }
}

/// Why every matching user was left out (there were some: never `no_candidates`).
fn left_out(candidates: &[Candidate]) -> Reason {
    if candidates.is_empty() {
        Reason::NoCandidates
    } else if candidates.iter().any(|c| c.has_identity_at_provider) {
        Reason::CandidateHasProviderIdentity
    } else if candidates.iter().all(|c| c.disabled) {
        Reason::CandidateDisabled
    } else {
        Reason::NoProvableCandidate
    }
}

/// Whether a person offered a manual link may choose a new account instead: always, unless
/// the match was ambiguous and the operator wants ambiguity to end in an error rather than
/// in a new user (`conflict_action = "error"`).
pub fn may_create_instead(policy: &LinkPolicy, reason: Reason) -> bool {
    !(reason == Reason::AmbiguousMatch && policy.conflict_action == ConflictAction::Error)
}

fn conflict(policy: &LinkPolicy, reason: Reason) -> Decision {
    match policy.conflict_action {
        ConflictAction::Error => Decision::Refuse { reason },
        ConflictAction::CreateUser => Decision::CreateUser { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(resolution: Resolution) -> LinkPolicy {
        LinkPolicy {
            resolution,
            on_ambiguity: OnAmbiguity::Manual,
            conflict_action: ConflictAction::Error,
            manual_available: true,
        }
    }

    fn verified(id: &UserId) -> Candidate {
        Candidate {
            user_id: id.clone(),
            verified_match: true,
            disabled: false,
            is_admin: false,
            has_identity_at_provider: false,
            can_prove: true,
        }
    }

    fn input(candidates: Vec<Candidate>) -> LinkInput {
        LinkInput {
            linked_user: None,
            connect_user: None,
            provider_link_only: false,
            candidates,
        }
    }

    #[test]
    fn row_identity_already_linked_logs_in_its_user() {
        let owner = UserId::generate();
        let mut i = input(vec![verified(&UserId::generate())]);
        i.linked_user = Some((owner.clone(), false));
        for r in [
            Resolution::Disabled,
            Resolution::Automatic,
            Resolution::Manual,
        ] {
            let d = decide(&i, &policy(r));
            assert_eq!(
                d,
                Decision::LogIn {
                    user: owner.clone(),
                    reason: Reason::AlreadyLinked
                }
            );
            assert_eq!(d.outcome(), Outcome::Complete);
        }
    }

    #[test]
    fn row_connect_intent_links_to_the_signed_in_user() {
        let me = UserId::generate();
        let mut i = input(vec![verified(&UserId::generate())]);
        i.connect_user = Some(me.clone());
        let d = decide(&i, &policy(Resolution::Disabled));
        assert_eq!(
            d,
            Decision::Link {
                user: me.clone(),
                reason: Reason::Connected
            }
        );
        assert_eq!(d.outcome(), Outcome::Complete);
    }

    #[test]
    fn row_connect_intent_refused_when_the_identity_belongs_to_someone_else() {
        let mut i = input(vec![]);
        i.connect_user = Some(UserId::generate());
        i.linked_user = Some((UserId::generate(), false));
        let d = decide(&i, &policy(Resolution::Automatic));
        assert_eq!(
            d,
            Decision::Refuse {
                reason: Reason::IdentityOwnedByAnotherUser
            }
        );
        assert_eq!(d.outcome(), Outcome::Conflict);
    }

    #[test]
    fn connect_intent_with_an_identity_already_on_the_same_user_is_a_no_op_login() {
        let me = UserId::generate();
        let mut i = input(vec![]);
        i.connect_user = Some(me.clone());
        i.linked_user = Some((me.clone(), false));
        assert_eq!(
            decide(&i, &policy(Resolution::Disabled)),
            Decision::LogIn {
                user: me,
                reason: Reason::AlreadyConnected
            }
        );
    }

    #[test]
    fn row_resolution_disabled_creates_a_new_user() {
        let d = decide(
            &input(vec![verified(&UserId::generate())]),
            &policy(Resolution::Disabled),
        );
        assert_eq!(
            d,
            Decision::CreateUser {
                reason: Reason::LinkingDisabled
            }
        );
        assert_eq!(d.outcome(), Outcome::Skipped);
    }

    #[test]
    fn row_automatic_zero_candidates_creates_a_new_user() {
        let d = decide(&input(vec![]), &policy(Resolution::Automatic));
        assert_eq!(
            d,
            Decision::CreateUser {
                reason: Reason::NoCandidates
            }
        );
    }

    #[test]
    fn row_automatic_one_candidate_links_and_logs_in() {
        let u = UserId::generate();
        let d = decide(&input(vec![verified(&u)]), &policy(Resolution::Automatic));
        assert_eq!(
            d,
            Decision::Link {
                user: u,
                reason: Reason::SingleVerifiedMatch
            }
        );
        assert_eq!(d.outcome(), Outcome::Complete);
    }

    #[test]
    fn row_automatic_several_candidates_with_on_ambiguity_manual_starts_the_manual_flow() {
        let (a, b) = (UserId::generate(), UserId::generate());
        let d = decide(
            &input(vec![verified(&a), verified(&b)]),
            &policy(Resolution::Automatic),
        );
        assert_eq!(
            d,
            Decision::Manual {
                candidates: vec![a, b],
                reason: Reason::AmbiguousMatch
            }
        );
        assert_eq!(d.outcome(), Outcome::Initiated);
    }

    #[test]
    fn row_automatic_several_candidates_with_on_ambiguity_conflict_follows_conflict_action() {
        let c = vec![verified(&UserId::generate()), verified(&UserId::generate())];
        let mut p = policy(Resolution::Automatic);
        p.on_ambiguity = OnAmbiguity::Conflict;
        assert_eq!(
            decide(&input(c.clone()), &p),
            Decision::Refuse {
                reason: Reason::AmbiguousMatch
            }
        );
        p.conflict_action = ConflictAction::CreateUser;
        let d = decide(&input(c), &p);
        assert_eq!(
            d,
            Decision::CreateUser {
                reason: Reason::AmbiguousMatch
            }
        );
    }

    #[test]
    fn row_manual_with_candidates_starts_the_manual_flow() {
        let u = UserId::generate();
        let d = decide(&input(vec![verified(&u)]), &policy(Resolution::Manual));
        assert_eq!(
            d,
            Decision::Manual {
                candidates: vec![u],
                reason: Reason::ManualResolution
            }
        );
    }

    #[test]
    fn manual_with_no_candidates_creates_a_new_user() {
        assert_eq!(
            decide(&input(vec![]), &policy(Resolution::Manual)),
            Decision::CreateUser {
                reason: Reason::NoCandidates
            }
        );
    }

    #[test]
    fn d02_d03_unverified_match_never_links_automatically() {
        let u = UserId::generate();
        let mut c = verified(&u);
        c.verified_match = false;
        let d = decide(&input(vec![c]), &policy(Resolution::Automatic));
        assert_eq!(
            d,
            Decision::Manual {
                candidates: vec![u],
                reason: Reason::UnverifiedMatchOnly
            }
        );
        let mut no_manual = policy(Resolution::Automatic);
        no_manual.manual_available = false;
        let mut c = verified(&UserId::generate());
        c.verified_match = false;
        assert_eq!(
            decide(&input(vec![c]), &no_manual),
            Decision::CreateUser {
                reason: Reason::UnverifiedMatchOnly
            }
        );
    }

    #[test]
    fn d04_d05_two_matches_are_ambiguous_even_if_only_one_is_verified() {
        let (a, b) = (UserId::generate(), UserId::generate());
        let mut unverified = verified(&b);
        unverified.verified_match = false;
        let mut p = policy(Resolution::Automatic);
        p.on_ambiguity = OnAmbiguity::Conflict;
        assert_eq!(
            decide(&input(vec![verified(&a), unverified]), &p),
            Decision::Refuse {
                reason: Reason::AmbiguousMatch
            }
        );
    }

    #[test]
    fn d07_disabled_target_is_not_linked_and_a_disabled_owner_cannot_log_in() {
        let mut c = verified(&UserId::generate());
        c.disabled = true;
        let mut p = policy(Resolution::Automatic);
        p.manual_available = false;
        assert_eq!(
            decide(&input(vec![c]), &p),
            Decision::CreateUser {
                reason: Reason::CandidateDisabled
            }
        );
        let mut i = input(vec![]);
        i.linked_user = Some((UserId::generate(), true));
        assert_eq!(
            decide(&i, &p),
            Decision::Refuse {
                reason: Reason::UserDisabled
            }
        );
    }

    #[test]
    fn d08_privileged_target_is_never_linked_automatically() {
        let u = UserId::generate();
        let mut c = verified(&u);
        c.is_admin = true;
        assert_eq!(
            decide(&input(vec![c]), &policy(Resolution::Automatic)),
            Decision::Manual {
                candidates: vec![u],
                reason: Reason::UnverifiedMatchOnly
            }
        );
    }

    #[test]
    fn c13_user_with_another_identity_at_the_same_provider_is_not_a_candidate() {
        let mut c = verified(&UserId::generate());
        c.has_identity_at_provider = true;
        assert_eq!(
            decide(&input(vec![c.clone()]), &policy(Resolution::Automatic)),
            Decision::CreateUser {
                reason: Reason::CandidateHasProviderIdentity
            },
            "recorded as such, not as no_candidates"
        );
        assert_eq!(
            decide(&input(vec![c]), &policy(Resolution::Manual)),
            Decision::CreateUser {
                reason: Reason::CandidateHasProviderIdentity
            }
        );
    }

    #[test]
    fn a19_link_only_provider_never_signs_in() {
        let mut i = input(vec![]);
        i.provider_link_only = true;
        i.linked_user = Some((UserId::generate(), false));
        assert_eq!(
            decide(&i, &policy(Resolution::Automatic)),
            Decision::Refuse {
                reason: Reason::LinkOnlyProvider
            }
        );
        i.connect_user = i.linked_user.as_ref().map(|(u, _)| u.clone());
        assert_eq!(
            decide(&i, &policy(Resolution::Automatic)).outcome(),
            Outcome::Complete
        );
    }

    #[test]
    fn an_account_nobody_could_prove_owning_is_never_offered_for_a_manual_link() {
        let mut c = verified(&UserId::generate());
        c.verified_match = false;
        c.can_prove = false;
        assert_eq!(
            decide(&input(vec![c]), &policy(Resolution::Manual)),
            Decision::CreateUser {
                reason: Reason::NoProvableCandidate
            }
        );
    }

    #[test]
    fn a_new_account_instead_of_a_manual_link_only_where_conflicts_may_create_users() {
        let mut p = policy(Resolution::Automatic);
        assert!(!may_create_instead(&p, Reason::AmbiguousMatch));
        assert!(may_create_instead(&p, Reason::UnverifiedMatchOnly));
        assert!(may_create_instead(&p, Reason::ManualResolution));
        p.conflict_action = ConflictAction::CreateUser;
        assert!(may_create_instead(&p, Reason::AmbiguousMatch));
    }

    #[test]
    fn an_ambiguous_match_nobody_can_prove_follows_the_conflict_rule() {
        let mut a = verified(&UserId::generate());
        let mut b = verified(&UserId::generate());
        a.can_prove = false;
        b.can_prove = false;
        let mut p = policy(Resolution::Automatic);
        assert_eq!(
            decide(&input(vec![a.clone(), b.clone()]), &p),
            Decision::Refuse {
                reason: Reason::AmbiguousMatch
            }
        );
        p.conflict_action = ConflictAction::CreateUser;
        assert_eq!(
            decide(&input(vec![a, b]), &p),
            Decision::CreateUser {
                reason: Reason::AmbiguousMatch
            }
        );
    }
}
