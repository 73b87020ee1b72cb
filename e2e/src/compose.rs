//! Reads `docker-compose.yml` the way docker compose would for what the code depends on:
//! services, their environment (with `${VAR:-default}` / `${VAR:?message}` interpolation),
//! and the localstack init hook.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// The repository root (where docker-compose.yml lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct Compose {
    pub doc: Yaml,
}

impl Compose {
    pub fn load() -> Compose {
        let text = std::fs::read_to_string(repo_root().join("docker-compose.yml"))
            .expect("reading docker-compose.yml");
        let mut docs = YamlLoader::load_from_str(&text).expect("docker-compose.yml is YAML");
        assert_eq!(docs.len(), 1, "one YAML document");
        Compose {
            doc: docs.remove(0),
        }
    }

    pub fn service(&self, name: &str) -> &Yaml {
        let s = &self.doc["services"][name];
        assert!(
            !s.is_badvalue(),
            "no service `{name}` in docker-compose.yml"
        );
        s
    }

    pub fn service_names(&self) -> Vec<String> {
        self.doc["services"]
            .as_hash()
            .expect("services is a map")
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect()
    }

    /// The service's environment, interpolated with `shell` standing in for the shell's
    /// variables (a missing `${VAR:?msg}` panics with the message, as compose refuses).
    pub fn environment(
        &self,
        name: &str,
        shell: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        match &self.service(name)["environment"] {
            Yaml::Hash(map) => {
                for (k, v) in map {
                    let value = match v {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        Yaml::Real(r) => r.clone(),
                        other => panic!("{name}: unsupported value {other:?}"),
                    };
                    env.insert(
                        k.as_str().expect("string key").to_owned(),
                        interpolate(&value, shell),
                    );
                }
            }
            Yaml::Array(items) => {
                for item in items {
                    let (k, v) = item
                        .as_str()
                        .and_then(|s| s.split_once('='))
                        .expect("KEY=value");
                    env.insert(k.to_owned(), interpolate(v, shell));
                }
            }
            Yaml::BadValue => {}
            other => panic!("{name}: environment must be a map or list, not {other:?}"),
        }
        env
    }
}

/// Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}`. Like Compose v1, an expression
/// ends at the first `}`, so a default must hold no brace (v1 would cut it there).
pub fn interpolate(value: &str, shell: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .expect("unclosed ${");
        let expr = &rest[start + 2..end];
        let (var, fallback) = if let Some((v, d)) = expr.split_once(":-") {
            assert!(
                !d.contains('{'),
                "`{value}`: Compose v1 ends ${{…}} at the first `}}`, so a default cannot hold braces"
            );
            (v, Some(d.to_owned()))
        } else if let Some((v, msg)) = expr.split_once(":?") {
            assert!(shell.contains_key(v), "compose would refuse: {v}: {msg}");
            (v, None)
        } else {
            (expr, Some(String::new()))
        };
        match shell.get(var).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(v),
            None => out.push_str(&fallback.unwrap_or_default()),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Buckets the localstack init hooks create (`awslocal s3 mb s3://NAME`).
pub fn init_hook_buckets() -> Vec<String> {
    let dir = repo_root().join("localstack/init/ready.d");
    let mut buckets = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("localstack/init/ready.d") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("hook");
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some(at) = line.find("s3://") {
                let name: String = line[at + 5..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                    .collect();
                buckets.push(name);
            }
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_follows_compose() {
        let shell: BTreeMap<String, String> = [("A".to_owned(), "1".to_owned())].into();
        assert_eq!(interpolate("x${A}y", &shell), "x1y");
        assert_eq!(
            interpolate("${B:-http://h}/{video_id}.mp4", &shell),
            "http://h/{video_id}.mp4"
        );
        assert!(std::panic::catch_unwind(|| interpolate(
            "${B:-http://h/{video_id}.mp4}",
            &BTreeMap::new()
        ))
        .is_err());
        assert_eq!(interpolate("${A:?needed}", &shell), "1");
        assert!(
            std::panic::catch_unwind(|| interpolate("${B:?needed}", &BTreeMap::new())).is_err()
        );
    }
}
