//! Hints of an email address or phone number that are safe to show, or to log, before anyone
//! has proven they own it: enough to recognise one's own, too little to learn someone else's.
//!
//! Total functions over any string: a value that does not look like an address or a number
//! still comes out masked, never as it was.

/// `alice@example.com` → `a***@e***.com`: the first character of the local part and of the
/// domain, and the last label of the domain.
pub fn mask_email(email: &str) -> String {
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let Some((local, domain)) = email.trim().rsplit_once('@') else {
        return "***".into();
    };
    match domain.rsplit_once('.') {
        Some((name, tld)) => format!("{}***@{}***.{tld}", first(local), first(name)),
        None => format!("{}***@{}***", first(local), first(domain)),
    }
}

/// `+12025550100` → `+1 ••• ••• 0100`: the country calling code and the last four digits,
/// with a fixed-width middle that hides how long the number is.
pub fn mask_phone(phone: &str) -> String {
    const MIDDLE: &str = "••• •••";
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 8 {
        // Too short for four digits to stay anonymous among the rest.
        return MIDDLE.into();
    }
    let last4 = &digits[digits.len() - 4..];
    let international = phone.trim_start().starts_with('+');
    match international
        .then(|| phonenumber::parse(None, phone).ok())
        .flatten()
    {
        Some(n) => format!("+{} {MIDDLE} {last4}", n.code().value()),
        None => format!("{MIDDLE} {last4}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_keeps_first_characters_and_the_top_level_domain() {
        assert_eq!(mask_email("alice@example.com"), "a***@e***.com");
        assert_eq!(mask_email("bob@mail.corp.co.uk"), "b***@m***.uk");
        assert_eq!(mask_email("élodie@exemple.fr"), "é***@e***.fr");
        assert_eq!(mask_email("root@localhost"), "r***@l***");
    }

    #[test]
    fn a_malformed_email_is_masked_whole() {
        assert_eq!(mask_email("not-an-address"), "***");
        assert_eq!(mask_email(""), "***");
        assert_eq!(mask_email("@example.com"), "***@e***.com");
    }

    #[test]
    fn a_phone_keeps_its_country_code_and_last_four_digits() {
        assert_eq!(mask_phone("+12025550100"), "+1 ••• ••• 0100");
        assert_eq!(mask_phone("+442079460958"), "+44 ••• ••• 0958");
        assert_eq!(mask_phone("+353861234567"), "+353 ••• ••• 4567");
    }

    #[test]
    fn the_masked_phone_does_not_reveal_the_length() {
        assert_eq!(
            mask_phone("+4915112345678").len(),
            mask_phone("+4930123456").len()
        );
    }

    #[test]
    fn a_phone_that_does_not_parse_still_hides_all_but_four_digits() {
        assert_eq!(mask_phone("2025550100"), "••• ••• 0100");
        assert_eq!(mask_phone("+999 1234 5678"), "••• ••• 5678");
        assert_eq!(mask_phone("12345"), "••• •••");
        assert_eq!(mask_phone(""), "••• •••");
    }
}
