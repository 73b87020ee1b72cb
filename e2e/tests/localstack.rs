//! The `s3` store against LocalStack, natively (`e2e::localstack`, the version the compose file
//! runs), not only against s3s-fs: conditional create, multipart upload, ranged reads and
//! presigned GETs at the store, then the whole job path on it — the listing index paged through
//! the API, a repeated submission being the same job, `?redirect=1` and the clips' durations.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use bytes::Bytes;
use e2e::localstack::LocalStack;
use e2e::media::probe_bytes;
use e2e::random_name;
use e2e::stack::{Options, Stack};
use hopster_common::settings::{Backend, Secret, StoreSettings};
use hopster_common::Store;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

fn store_settings(ls: &LocalStack, bucket: &str) -> StoreSettings {
    StoreSettings {
        backend: Backend::S3,
        bucket: bucket.to_owned(),
        endpoint: Some(ls.endpoint.clone()),
        region: "us-east-1".into(),
        access_key_id: Some("test".into()),
        secret_access_key: Some(Secret::new("test")),
        ..StoreSettings::default()
    }
}

/// 11 MiB of bytes that differ at every offset, so a misplaced part or range shows.
fn payload() -> Vec<u8> {
    (0..11u32 * 1024 * 1024)
        .map(|i| u8::try_from((i ^ (i >> 8) ^ (i >> 16)) & 0xff).expect("a byte"))
        .collect()
}

async fn store_operations(ls: &LocalStack) {
    let bucket = random_name("bucket");
    ls.create_bucket(&bucket).await;
    let store = Store::from_settings(&store_settings(ls, &bucket)).expect("the s3 store");
    let objects = store.objects();

    // Conditional create: the second create of the same key is refused, the first stays.
    let key = Path::from("jobs/conditional.json");
    let create = || PutOptions::from(PutMode::Create);
    objects
        .put_opts(&key, PutPayload::from_static(b"first"), create())
        .await
        .expect("the first create");
    let second = objects
        .put_opts(&key, PutPayload::from_static(b"second"), create())
        .await;
    assert!(
        matches!(second, Err(object_store::Error::AlreadyExists { .. })),
        "{second:?}"
    );
    let kept = objects
        .get(&key)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(kept, Bytes::from_static(b"first"));

    // Multipart: three parts (5 + 5 + 1 MiB), read back whole and by ranges across the joins.
    let data = payload();
    let big = Path::from("sources/multipart.bin");
    let upload = objects.put_multipart(&big).await.expect("start multipart");
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * 1024 * 1024);
    for chunk in data.chunks(700_000) {
        writer.write(chunk);
    }
    writer.finish().await.expect("complete multipart");
    let meta = store
        .head(big.as_ref())
        .await
        .expect("head")
        .expect("the object");
    assert_eq!(meta.size, data.len() as u64);
    let whole = objects
        .get(&big)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert!(whole == data, "the multipart object reads back as written");
    let join = 5 * 1024 * 1024u64;
    for range in [
        0..100,
        join - 10..join + 10,
        (data.len() as u64 - 7)..data.len() as u64,
    ] {
        let got = objects
            .get_range(&big, range.clone())
            .await
            .expect("get_range");
        let want = &data[usize::try_from(range.start).expect("usize")
            ..usize::try_from(range.end).expect("usize")];
        assert_eq!(&got[..], want, "range {range:?}");
    }

    // An aborted multipart upload leaves no object.
    let aborted = Path::from("sources/aborted.bin");
    let upload = objects
        .put_multipart(&aborted)
        .await
        .expect("start multipart");
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * 1024 * 1024);
    writer.write(&data[..6 * 1024 * 1024]);
    writer.abort().await.expect("abort");
    assert!(store.head(aborted.as_ref()).await.expect("head").is_none());

    // Presigned GET: the URL alone reads the object; a tampered signature is refused.
    let url = store
        .presigned_get(big.as_ref())
        .await
        .expect("presign")
        .expect("the s3 store signs");
    let r = reqwest::get(&url).await.expect("GET presigned");
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.expect("bytes") == data);
    let mut tampered = url::Url::parse(&url).expect("a URL");
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "X-Amz-Signature" {
                // Another last hex digit: one that ends in 0 already must change too.
                let other = if v.ends_with('0') { '1' } else { '0' };
                format!("{}{other}", &v[..v.len() - 1])
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let r = reqwest::get(tampered).await.expect("GET tampered");
    assert_eq!(r.status(), 403, "a tampered presigned URL is refused");
}

async fn job_path(ls: &LocalStack) {
    let bucket = random_name("bucket");
    ls.create_bucket(&bucket).await;
    let store = store_settings(ls, &bucket);
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        move |s| s.store = store,
    )
    .await;
    let clip = |start: u32| json!({"video_id": "sixty", "start": format!("00:00:{start:02}"), "stop": format!("00:00:{:02}", start + 2)});
    let mut ids = Vec::new();
    for start in [5, 10, 15] {
        let (code, job) = stack.api.post("/v1/jobs", &clip(start)).await;
        assert_eq!(code, 202, "{job}");
        ids.push(job["id"].as_str().expect("an id").to_owned());
    }
    // The same clip again is the same job (the conditional create, on LocalStack).
    let (code, again) = stack.api.post("/v1/jobs", &clip(5)).await;
    assert_eq!((code, again["id"].as_str()), (200, Some(ids[0].as_str())));

    for id in &ids {
        let (job, states) = stack.api.wait_for_job(id, Duration::from_secs(120)).await;
        assert_eq!(job["state"], "completed", "{states:?} {job}");
        // ?redirect=1 names LocalStack; following it gives the clip.
        let r = reqwest::get(stack.api.url(&format!("/v1/jobs/{id}/video?redirect=1")))
            .await
            .expect("GET ?redirect=1");
        assert_eq!(r.status(), 200);
        assert!(r.url().as_str().starts_with(&ls.endpoint), "{}", r.url());
        let bytes = r.bytes().await.expect("bytes");
        assert_eq!(Some(bytes.len() as u64), job["result"]["size"].as_u64());
        let d = probe_bytes(&bytes).duration;
        assert!((d - 2.0).abs() <= 0.05, "{id}: duration {d}");
    }

    // The listing index, paged by two: each job once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/jobs?limit=2&cursor={c}"),
            None => "/v1/jobs?limit=2".to_owned(),
        };
        let (code, page) = stack.api.get_json(&path).await;
        assert_eq!(code, 200, "{page}");
        let jobs = page["jobs"].as_array().expect("jobs");
        assert!(jobs.len() <= 2);
        seen.extend(
            jobs.iter()
                .map(|j| j["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 3);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_s3_store_works_on_localstack() {
    // One LocalStack for both parts: it takes about 20 s to start.
    let ls = LocalStack::start().await;
    store_operations(&ls).await;
    job_path(&ls).await;
}
