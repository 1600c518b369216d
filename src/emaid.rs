//! eMAID (e-mobility account identifier) normalization, as MaEVe does it for
//! token contract ids: `CC-PPP-IIIIIIIII-D` with optional hyphens, upper-cased,
//! hyphens removed, the check digit appended when missing and verified when
//! present.
//!
//! The check digit is the one of the eMI3/ISO 15118 EVCO ID scheme: each
//! character maps to a 2x2 matrix over GF(2) and GF(3) ("q" and "r" halves),
//! multiplied with position-dependent matrices P1 (mod 2) and P2 (mod 3);
//! the four sums pick the check character.

/// Why a contract id is not a valid eMAID.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmaidError {
    /// Not of the form `CC[-]PPP[-]IIIIIIIII[[-]D]`.
    #[error("{0:?} is not an eMAID (expected CC-PPP-IIIIIIIII with an optional check digit)")]
    Malformed(String),
    /// The check digit given does not match the one computed.
    #[error("eMAID check digit {given} is wrong, expected {expected}")]
    WrongCheckDigit {
        /// The digit in the input.
        given: char,
        /// The digit computed from the first 14 characters.
        expected: char,
    },
}

/// Normalizes an eMAID: upper case, no hyphens, with its check digit.
pub fn normalize(emaid: &str) -> Result<String, EmaidError> {
    let malformed = || EmaidError::Malformed(emaid.to_owned());
    let compact = strip_hyphens(emaid)
        .ok_or_else(malformed)?
        .to_ascii_uppercase();
    let bytes = compact.as_bytes();
    let shape_ok = matches!(bytes.len(), 14 | 15)
        && bytes[..2].iter().all(u8::is_ascii_alphabetic)
        && bytes.iter().all(u8::is_ascii_alphanumeric);
    if !shape_ok {
        return Err(malformed());
    }
    let expected = check_digit(&bytes[..14]);
    match bytes.get(14) {
        None => Ok(format!("{compact}{expected}")),
        Some(&given) if given as char == expected => Ok(compact),
        Some(&given) => Err(EmaidError::WrongCheckDigit {
            given: given as char,
            expected,
        }),
    }
}

/// Removes the separators allowed after the country code (2), the provider
/// id (3) and the instance (9); `None` when a hyphen stands anywhere else.
fn strip_hyphens(emaid: &str) -> Option<String> {
    let mut out = String::with_capacity(15);
    let mut after_hyphen = false;
    for c in emaid.chars() {
        if c == '-' {
            if after_hyphen || !matches!(out.len(), 2 | 5 | 14) {
                return None;
            }
            after_hyphen = true;
        } else {
            out.push(c);
            after_hyphen = false;
        }
    }
    Some(out)
}

/// The character's matrix entries `[q1, q2, r1, r2]`: its value v (0-9 for
/// digits, 10-35 for letters) written as v = 18*q1 + 9*q2 + 3*r1 + r2, with
/// q1, q2 in GF(2) and r1, r2 in GF(3), as in the EVCO ID check digit paper.
fn char_matrix(c: u8) -> [u32; 4] {
    let v = u32::from(match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'A' + 10,
    });
    [(v / 18) % 2, (v / 9) % 2, (v / 3) % 3, v % 3]
}

/// P1^i for i = 1..=15 (2x2 over GF(2), row-major), cycling with period 3.
const P1: [[u32; 4]; 3] = [[0, 1, 1, 1], [1, 1, 1, 0], [1, 0, 0, 1]];
/// P2^i for i = 1..=15 (2x2 over GF(3), row-major), cycling with period 8.
const P2: [[u32; 4]; 8] = [
    [0, 1, 1, 2],
    [1, 2, 2, 2],
    [2, 2, 2, 0],
    [2, 0, 0, 2],
    [0, 2, 2, 1],
    [2, 1, 1, 1],
    [1, 1, 1, 0],
    [1, 0, 0, 1],
];

/// Maps (q1, q2, r1, r2) back to a character: index q1 + 2*q2 + 4*r1 + 16*r2.
const REVERSE: &[u8; 44] = b"0I9R3LCU6OFX----1JAS4MDV7PGY----2KBT5NEW8QHZ";

/// The check digit of the first 14 characters of a normalized eMAID.
fn check_digit(first14: &[u8]) -> char {
    let (mut c1, mut c2, mut c3, mut c4) = (0, 0, 0, 0);
    for (i, &c) in first14.iter().enumerate() {
        let m = char_matrix(c);
        let p1 = P1[i % 3];
        let p2 = P2[i % 8];
        c1 += m[0] * p1[0] + m[1] * p1[2];
        c2 += m[0] * p1[1] + m[1] * p1[3];
        c3 += m[2] * p2[0] + m[3] * p2[2];
        c4 += m[2] * p2[1] + m[3] * p2[3];
    }
    let (q1, q2) = (c1 % 2, c2 % 2);
    let (c3, c4) = (c3 % 3, c4 % 3);
    // Solve the GF(3) half for the check character's r digits.
    let r1 = (3 - c4) % 3;
    let r2 = (3 - (c3 + r1) % 3) % 3;
    REVERSE[(q1 + q2 * 2 + r1 * 4 + r2 * 16) as usize] as char
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hyphens_and_keeps_a_correct_check_digit() {
        assert_eq!(normalize("GB-TWK-012345678-V").unwrap(), "GBTWK012345678V");
    }

    #[test]
    fn upper_cases_and_appends_the_check_digit() {
        assert_eq!(normalize("gbtwk123456789").unwrap(), "GBTWK123456789B");
    }

    #[test]
    fn computes_known_check_digits() {
        // Published examples of valid eMAIDs with their check digits.
        for emaid in ["GBTWK012345678V", "CSKTH5U8TC90A1S", "IHRFRNPCZVPPVEW"] {
            assert_eq!(normalize(&emaid[..14]).unwrap(), emaid, "{emaid}");
            assert_eq!(normalize(emaid).unwrap(), emaid, "{emaid}");
        }
    }

    #[test]
    fn refuses_a_wrong_check_digit() {
        assert_eq!(
            normalize("GBTWK012345678A"),
            Err(EmaidError::WrongCheckDigit {
                given: 'A',
                expected: 'V'
            })
        );
    }

    #[test]
    fn refuses_malformed_ids() {
        for bad in [
            "GB-TWK-01234567",
            "",
            "1BTWK012345678",
            "GBTWK0123456789XX",
            "G-BTWK012345678",
            "GB--TWK012345678",
            "GBTWK01234567é",
        ] {
            assert!(
                matches!(normalize(bad), Err(EmaidError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
