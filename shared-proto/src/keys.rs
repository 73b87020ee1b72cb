//! Where things live in the bucket. Keys are built only from validated ids and digests.

use crate::spec::hex;
use crate::JobId;
use sha2::{Digest, Sha256};

/// The job's status document.
pub fn status_key(id: &JobId) -> String {
    format!("jobs/{id}.json")
}

/// The job's result.
pub fn result_key(id: &JobId) -> String {
    format!("results/{id}.mp4")
}

/// A staged source, shared by every job of the same URL so a second clip skips the download.
pub fn source_key(url: &str) -> String {
    format!("sources/{}", hex(&Sha256::digest(url.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        let id = JobId::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            status_key(&id),
            "jobs/0123456789abcdef0123456789abcdef.json"
        );
        assert_eq!(
            result_key(&id),
            "results/0123456789abcdef0123456789abcdef.mp4"
        );
        let key = source_key("http://h/v.mp4");
        assert!(key.starts_with("sources/") && key.len() == "sources/".len() + 64);
        assert_eq!(key, source_key("http://h/v.mp4"));
    }
}
