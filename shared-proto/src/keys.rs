//! Where things live in the bucket. Keys are built only from validated ids and digests.

use crate::spec::hex;
use crate::{JobId, Profile};
use sha2::{Digest, Sha256};

/// The job's status document.
pub fn status_key(id: &JobId) -> String {
    format!("jobs/{id}.json")
}

/// A source inspection's document: `inspections/{id}.json`.
pub fn inspection_key(id: &JobId) -> String {
    format!("inspections/{id}.json")
}

/// A source inspection's storyboard sprite (`jpg`) or cues (`vtt`).
pub fn storyboard_key(id: &JobId, ext: &str) -> String {
    format!("inspections/{id}/storyboard.{ext}")
}

/// The job's result: `results/{id}.{ext}` (mp4 keeps the key it always had). An HLS
/// result is a playlist and segments under [`hls_prefix`].
pub fn result_key(id: &JobId, profile: Profile) -> String {
    match profile {
        Profile::Hls => format!("{}index.m3u8", hls_prefix(id)),
        other => format!("results/{id}.{}", other.extension()),
    }
}

/// Where an HLS result's playlist and segments live.
pub fn hls_prefix(id: &JobId) -> String {
    format!("results/{id}/")
}

/// The job's poster.
pub fn poster_key(id: &JobId) -> String {
    format!("posters/{id}.jpg")
}

/// The listing index: an empty object per job, named so that a lexical listing (what S3
/// returns) is newest first. The name doubles as the paging cursor. Under load, jobs
/// submitted together share one object: see [`index_batch_key`].
pub fn index_key(id: &JobId, created_at_ms: u64) -> String {
    format!("{INDEX_PREFIX}{:016x}-{id}", u64::MAX - created_at_ms)
}

/// The prefix of [`index_key`]s.
pub const INDEX_PREFIX: &str = "index/";

/// The job id and creation time an index key names.
pub fn parse_index_key(key: &str) -> Option<(JobId, u64)> {
    let (inverted, id) = key.strip_prefix(INDEX_PREFIX)?.split_once('-')?;
    let inverted = u64::from_str_radix(inverted, 16).ok()?;
    Some((JobId::parse(id)?, u64::MAX - inverted))
}

/// Index entries an index object's name holds at most. S3 takes 1,024-byte keys, but
/// file-backed S3 APIs do not: s3s-fs keeps each object's metadata in a file named after the
/// base64 of bucket and key, which with a 63-character bucket name leaves 105 bytes of key.
pub const INDEX_NAME_ENTRIES: usize = 2;

/// One index object for jobs written at once: its name and its body. Up to
/// [`INDEX_NAME_ENTRIES`] jobs are named by the object (entries oldest first, joined by `_`;
/// one job gives [`index_key`]) and the body is empty. More are named by their oldest and
/// newest entries, and the body lists every entry, one per line. Either way the name sorts by
/// its oldest entry, so every object holding an entry after a cursor lists after that cursor.
pub fn index_batch(jobs: &[(JobId, u64)]) -> (String, String) {
    let mut entries: Vec<String> = jobs
        .iter()
        .map(|(id, created)| index_key(id, *created)[INDEX_PREFIX.len()..].to_owned())
        .collect();
    entries.sort_unstable_by(|a, b| b.cmp(a));
    if entries.len() <= INDEX_NAME_ENTRIES {
        return (
            format!("{INDEX_PREFIX}{}", entries.join("_")),
            String::new(),
        );
    }
    let (oldest, newest) = (&entries[0], &entries[entries.len() - 1]);
    (
        format!("{INDEX_PREFIX}{oldest}_{newest}"),
        entries.join("\n"),
    )
}

/// The single-entry [`index_key`]s an index object's name holds (all of its entries when
/// its body is empty; its oldest and newest otherwise); `None` when the name is not an index
/// object's.
pub fn index_entries(key: &str) -> Option<Vec<String>> {
    key.strip_prefix(INDEX_PREFIX)?
        .split('_')
        .map(|entry| {
            let key = format!("{INDEX_PREFIX}{entry}");
            parse_index_key(&key).map(|_| key)
        })
        .collect()
}

/// The [`index_key`]s an index object's body lists; lines that are not entries are skipped.
pub fn index_body_entries(body: &str) -> Vec<String> {
    body.lines()
        .map(|entry| format!("{INDEX_PREFIX}{entry}"))
        .filter(|key| parse_index_key(key).is_some())
        .collect()
}

/// A staged source, shared by every job of the same URL so a second clip skips the download.
pub fn source_key(url: &str) -> String {
    format!("sources/{}", hex(&Sha256::digest(url.as_bytes())))
}

/// Where the part of an HLS source that a clip needs is staged: the segments `first..=last`
/// (media sequence numbers) of the media playlist at `media`, reached from `url`. Every such
/// key of one `url` starts with [`hls_source_prefix`].
pub fn hls_source_key(url: &str, media: &str, first: u64, last: u64) -> String {
    let part = format!("{media}\n{first}-{last}");
    format!(
        "{}{}",
        hls_source_prefix(url),
        hex(&Sha256::digest(part.as_bytes()))
    )
}

/// The start of every staged HLS part of `url`.
pub fn hls_source_prefix(url: &str) -> String {
    format!("sources/hls/{}-", hex(&Sha256::digest(url.as_bytes())))
}

/// What names the source a staged object `key` belongs to: the key itself for a whole
/// source ([`source_key`]), its [`hls_source_prefix`] for an HLS part.
pub fn source_owner(key: &str) -> &str {
    match key
        .strip_prefix("sources/hls/")
        .and_then(|rest| rest.find('-'))
    {
        Some(dash) => &key[..("sources/hls/".len() + dash + 1)],
        None => key,
    }
}

/// The names [`source_owner`] gives the objects staged for `url`.
pub fn source_owners(url: &str) -> [String; 2] {
    [source_key(url), hls_source_prefix(url)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_sources_name_their_source() {
        let url = "https://cdn.example.com/v/index.m3u8";
        let part = hls_source_key(url, "https://cdn.example.com/v/720p.m3u8", 3, 5);
        let owners = source_owners(url);
        assert_eq!(source_owner(&part), owners[1]);
        assert_eq!(source_owner(&source_key(url)), owners[0]);
        let other = hls_source_key("https://cdn.example.com/w.m3u8", "m", 3, 5);
        assert!(!owners.contains(&source_owner(&other).to_owned()));
        assert_eq!(source_owner("sources/hls/odd"), "sources/hls/odd");
    }

    #[test]
    fn keys_follow_the_layout() {
        let id = JobId::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            status_key(&id),
            "jobs/0123456789abcdef0123456789abcdef.json"
        );
        assert_eq!(
            result_key(&id, Profile::Mp4),
            "results/0123456789abcdef0123456789abcdef.mp4"
        );
        assert_eq!(
            result_key(&id, Profile::Hls),
            "results/0123456789abcdef0123456789abcdef/index.m3u8"
        );
        assert_eq!(
            result_key(&id, Profile::Mp3),
            "results/0123456789abcdef0123456789abcdef.mp3"
        );
        let newer = index_key(&id, 2_000);
        let older = index_key(&id, 1_000);
        assert!(newer < older, "newest first in lexical order");
        assert_eq!(parse_index_key(&older), Some((id.clone(), 1_000)));
        assert_eq!(parse_index_key("index/zz-x"), None);
        assert_eq!(older.len(), INDEX_PREFIX.len() + 16 + 1 + 32);
        let other = JobId::parse("ffffffffffffffffffffffffffffffff").unwrap();
        let (pair, body) = index_batch(&[(id.clone(), 2_000), (other.clone(), 1_000)]);
        assert!(body.is_empty() && pair.len() <= 105, "fits s3s-fs: {pair}");
        assert_eq!(index_entries(&pair).unwrap().len(), 2);
        let three = [(id.clone(), 2_000), (other, 1_500), (id.clone(), 1_000)];
        let (batch, body) = index_batch(&three);
        assert!(batch.len() <= 105);
        assert!(
            batch.starts_with(&older) && batch > older,
            "sorts by its oldest entry"
        );
        assert_eq!(
            index_entries(&batch),
            Some(vec![older.clone(), newer.clone()])
        );
        let listed = index_body_entries(&body);
        assert_eq!(listed.len(), 3);
        assert_eq!((&listed[0], &listed[2]), (&older, &newer));
        assert_eq!(
            index_batch(&[(id.clone(), 1_000)]),
            (older.clone(), String::new())
        );
        assert_eq!(index_entries(&older), Some(vec![older.clone()]));
        assert_eq!(parse_index_key(&batch), None, "a batch is never a cursor");
        assert_eq!(index_entries("index/zz-x_y"), None);
        assert_eq!(index_entries("jobs/x.json"), None);
        assert_eq!(index_body_entries("junk\n"), Vec::<String>::new());
        let key = source_key("http://h/v.mp4");
        assert!(key.starts_with("sources/") && key.len() == "sources/".len() + 64);
        assert_eq!(key, source_key("http://h/v.mp4"));
    }
}
