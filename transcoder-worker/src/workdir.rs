//! A per-job temp directory, removed when the guard drops (on success, failure or panic).

use std::path::{Path, PathBuf};

pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub fn create(parent: Option<&Path>, job: &str) -> std::io::Result<WorkDir> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = parent.join(format!("hopster-{job}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir { path })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            log::warn!("removing {}: {e}", self.path.display());
        }
    }
}

/// A work path as ffmpeg's arguments take it.
pub fn path_str(path: &std::path::Path) -> Result<&str, hopster_common::worker::StageError> {
    path.to_str().ok_or_else(|| {
        hopster_common::worker::StageError::abort(
            shared_proto::ErrorCode::Internal,
            format!("work path {} is not UTF-8", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_gone_after_the_guard() {
        let dir = WorkDir::create(None, "test").unwrap();
        let path = dir.file("x");
        std::fs::write(&path, b"1").unwrap();
        drop(dir);
        assert!(!path.exists() && !path.parent().unwrap().exists());
    }
}
