//! Decoy credentials for canaries: plausible for their kind and random each
//! time, so a decoy value seen anywhere else can only have come from its file.

use crate::policy::CanaryKind;

/// Random characters from `alphabet`.
fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // SAFETY: the pointer and length describe the unfilled tail of buf.
        let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), n - filled, 0) };
        if r <= 0 {
            // getrandom cannot fail for small requests once the pool is up;
            // fall back to the clock rather than plant a predictable decoy.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            for (i, b) in buf[filled..].iter_mut().enumerate() {
                *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(131);
            }
            break;
        }
        filled += r as usize;
    }
    buf.iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect()
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A plausible decoy of the given kind. Random each time, so a decoy value
/// seen elsewhere can only have come from this file.
pub fn make(kind: CanaryKind) -> String {
    match kind {
        CanaryKind::Aws => format!(
            "[default]\naws_access_key_id = AKIA{}\naws_secret_access_key = {}\nregion = us-east-1\n",
            random_from(UPPER_DIGITS, 16),
            random_from(B64, 40)
        ),
        CanaryKind::Ssh => {
            let body = random_from(B64, 64 * 6);
            let lines: Vec<&str> = (0..6).map(|i| &body[i * 64..(i + 1) * 64]).collect();
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                lines.join("\n")
            )
        }
        CanaryKind::Npm => format!(
            "//registry.npmjs.org/:_authToken=npm_{}\n",
            random_from(ALNUM, 36)
        ),
        CanaryKind::Netrc => format!(
            "machine github.com\n  login ci-deploy\n  password ghp_{}\n",
            random_from(ALNUM, 36)
        ),
        CanaryKind::Docker => format!(
            "{{\n  \"auths\": {{\n    \"https://index.docker.io/v1/\": {{\n      \"auth\": \"{}=\"\n    }}\n  }}\n}}\n",
            random_from(B64, 31)
        ),
        CanaryKind::Env => format!(
            "DATABASE_URL=postgres://app:{}@db.internal:5432/app\nSTRIPE_SECRET_KEY=sk_live_{}\n",
            random_from(ALNUM, 20),
            random_from(ALNUM, 24)
        ),
        CanaryKind::Generic => format!("token={}\n", random_from(ALNUM, 40)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_from(s: &str, alphabet: &[u8]) -> bool {
        s.bytes().all(|b| alphabet.contains(&b))
    }

    #[test]
    fn each_kind_looks_like_the_real_file_with_a_random_secret_of_its_size() {
        let docker = make(CanaryKind::Docker);
        let v: serde_json::Value = serde_json::from_str(&docker).unwrap();
        let auth = v["auths"]["https://index.docker.io/v1/"]["auth"]
            .as_str()
            .unwrap();
        assert!(
            auth.len() == 32 && auth.ends_with('=') && all_from(&auth[..31], B64),
            "{auth}"
        );

        let generic = make(CanaryKind::Generic);
        let token = generic
            .strip_prefix("token=")
            .unwrap()
            .strip_suffix('\n')
            .unwrap();
        assert!(token.len() == 40 && all_from(token, ALNUM), "{generic}");

        let env = make(CanaryKind::Env);
        assert!(env.starts_with("DATABASE_URL=postgres://app:"), "{env}");
        assert!(env.contains("\nSTRIPE_SECRET_KEY=sk_live_"), "{env}");

        let netrc = make(CanaryKind::Netrc);
        let pass = netrc.rsplit("password ghp_").next().unwrap().trim_end();
        assert!(pass.len() == 36 && all_from(pass, ALNUM), "{netrc}");

        let ssh = make(CanaryKind::Ssh);
        let body: Vec<&str> = ssh.lines().collect();
        assert_eq!(body.len(), 8, "{ssh}");
        assert!(body[1..7].iter().all(|l| l.len() == 64 && all_from(l, B64)));

        let aws = make(CanaryKind::Aws);
        let id = aws.split("aws_access_key_id = AKIA").nth(1).unwrap();
        assert!(
            all_from(&id[..16], UPPER_DIGITS) && id.as_bytes()[16] == b'\n',
            "{aws}"
        );
    }

    #[test]
    fn random_text_uses_only_its_alphabet_and_differs() {
        let a = random_from(b"ab", 64);
        assert!(a.len() == 64 && all_from(&a, b"ab"));
        assert_ne!(random_from(ALNUM, 32), random_from(ALNUM, 32));
        assert_eq!(random_from(ALNUM, 0), "");
    }
}
