//! The `fs` store: object_store's `LocalFileSystem`, with a cheaper create-if-absent.
//!
//! `LocalFileSystem` creates an object that must not exist yet (`PutMode::Create`, as every
//! new job's status is) by writing a staging file beside it, hard-linking it to its name and
//! unlinking the staging name: three changes to the directory, each under its lock, the first
//! allocating the inode while holding it. Under a burst of submissions the gateway's threads
//! spent most of their CPU waiting on that lock (issue 18 goal 7, `bench/RESULTS.md`). Here
//! the file is made unnamed in its directory (`O_TMPFILE`: the inode is allocated without the
//! directory's lock), written whole, and linked to its name once: one change to the
//! directory, atomic, and a name that exists already fails the link (`AlreadyExists`). A
//! reader never sees a partial object, as before. Where the filesystem has no `O_TMPFILE`,
//! or `/proc` is not mounted, the create falls back to `LocalFileSystem`'s. A small create
//! runs on the calling thread, not a blocking one (see [`Local::put_opts`]).

use async_trait::async_trait;
use futures::stream::BoxStream;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::Mode;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use std::io::Write;
use std::os::fd::AsRawFd;

#[derive(Debug)]
pub(crate) struct Local {
    inner: LocalFileSystem,
    /// The root as `LocalFileSystem` resolved it (canonical), for [`Local::file_path`].
    root: std::path::PathBuf,
}

impl Local {
    pub(crate) fn new(root: &std::path::Path) -> Result<Local> {
        let inner = LocalFileSystem::new_with_prefix(root)?;
        let root = std::fs::canonicalize(root).map_err(|e| object_store::Error::Generic {
            store: "hopster-fs",
            source: e.into(),
        })?;
        Ok(Local { inner, root })
    }

    /// The file `location` is stored in: `LocalFileSystem`'s own mapping, which goes through
    /// a `file:` URL (a parse and a percent-encoding per call), except for a key of plain
    /// characters (every key Hopster makes: `jobs/{id}.json`), whose file is the key itself
    /// under the root.
    fn file_path(&self, location: &Path) -> Result<std::path::PathBuf> {
        let key = location.as_ref();
        let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/');
        if !key.is_empty() && key.bytes().all(plain) {
            return Ok(self.root.join(key));
        }
        self.inner.path_to_filesystem(location)
    }
}

impl Local {
    /// Stores the local file `file` as `location` by linking it in, no byte copied: a hard
    /// link beside the object, renamed over it (an object is never seen half-written).
    /// `Ok(false)` when `file` is on another filesystem: the caller copies it.
    pub(crate) fn link_in(&self, file: &std::path::Path, location: &Path) -> Result<bool> {
        let dest = self.inner.path_to_filesystem(location)?;
        let failed = |e: std::io::Error| object_store::Error::Generic {
            store: "hopster-fs",
            source: e.into(),
        };
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        // `#` marks a name `LocalFileSystem` lists as no object (its own staging files).
        let mut staged = dest.clone().into_os_string();
        staged.push(format!("#link-{}", std::process::id()));
        let staged = std::path::PathBuf::from(staged);
        let _ = std::fs::remove_file(&staged);
        match std::fs::hard_link(file, &staged) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(Errno::EXDEV as i32) => return Ok(false),
            Err(e) => return Err(failed(e)),
        }
        let renamed = std::fs::rename(&staged, &dest);
        // Gone after a rename, unless the object was this very file already (a rename of a
        // name onto another link of the same file does nothing).
        let _ = std::fs::remove_file(&staged);
        renamed.map_err(failed)?;
        Ok(true)
    }
}

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hopster-{}", self.inner)
    }
}

/// Objects up to this size are created without a blocking thread ([`Local::put_opts`]).
const INLINE_CREATE_BYTES: usize = 64 * 1024;

/// What a create by `O_TMPFILE` came to.
enum Created {
    Done(PutResult),
    Exists(std::io::Error),
    /// Not possible here: the caller creates the other way.
    Unsupported,
}

/// Creates `path` with `payload` unless it exists: an unnamed file in its directory, written
/// whole, then linked to its name ([`Local`]).
fn create_new(path: &std::path::Path, payload: &PutPayload) -> std::io::Result<Created> {
    let Some(dir) = path.parent() else {
        return Ok(Created::Unsupported);
    };
    let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o666);
    let fd = match nix::fcntl::open(dir, flags, mode) {
        Err(Errno::ENOENT) => {
            std::fs::create_dir_all(dir)?;
            nix::fcntl::open(dir, flags, mode)
        }
        opened => opened,
    };
    let Ok(fd) = fd else {
        return Ok(Created::Unsupported);
    };
    let mut file = std::fs::File::from(fd);
    for chunk in payload.iter() {
        file.write_all(chunk)?;
    }
    match link_unnamed(&file, path) {
        // No ETag: nothing reads a create's, and asking the filesystem for one (a `stat`)
        // was a sixth of the create's cost on ext4 (issue 18 goal 7). A read reports it.
        Ok(()) => Ok(Created::Done(PutResult {
            e_tag: None,
            version: None,
            extensions: Default::default(),
        })),
        Err(Errno::EEXIST) => Ok(Created::Exists(Errno::EEXIST.into())),
        Err(_) => Ok(Created::Unsupported),
    }
}

/// Names the unnamed `file` `path`: by the descriptor itself where the process may
/// (`CAP_DAC_READ_SEARCH`), no walk through `/proc`; else by its `/proc` name, which any
/// process may link.
fn link_unnamed(file: &std::fs::File, path: &std::path::Path) -> nix::Result<()> {
    match nix::unistd::linkat(file, "", AT_FDCWD, path, AtFlags::AT_EMPTY_PATH) {
        Err(Errno::EPERM | Errno::ENOENT | Errno::EINVAL) => link_by_proc_name(file, path),
        linked => linked,
    }
}

fn link_by_proc_name(file: &std::fs::File, path: &std::path::Path) -> nix::Result<()> {
    let unnamed = format!("/proc/self/fd/{}", file.as_raw_fd());
    nix::unistd::linkat(
        AT_FDCWD,
        unnamed.as_str(),
        AT_FDCWD,
        path,
        AtFlags::AT_SYMLINK_FOLLOW,
    )
}

#[async_trait]
impl ObjectStore for Local {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if !matches!(opts.mode, PutMode::Create) || !opts.attributes.is_empty() {
            return self.inner.put_opts(location, payload, opts).await;
        }
        let path = self.file_path(location)?;
        // A small object (every job's status) is created on the calling thread: a few system
        // calls on the page cache, no I/O to wait for, cost less than handing the work to a
        // blocking thread and back (two wake-ups and context switches, most of a
        // submission's cost on `fs`: issue 18 goal 7). A larger one goes to a blocking thread.
        let (path, payload, created) = if payload.content_length() <= INLINE_CREATE_BYTES {
            let created = create_new(&path, &payload);
            (path, payload, created)
        } else {
            tokio::task::spawn_blocking(move || {
                let created = create_new(&path, &payload);
                (path, payload, created)
            })
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "hopster-fs",
                source: e.into(),
            })?
        };
        match created {
            Ok(Created::Done(result)) => Ok(result),
            Ok(Created::Exists(source)) => Err(object_store::Error::AlreadyExists {
                path: path.to_string_lossy().into_owned(),
                source: source.into(),
            }),
            Ok(Created::Unsupported) => self.inner.put_opts(location, payload, opts).await,
            Err(source) => Err(object_store::Error::Generic {
                store: "hopster-fs",
                source: source.into(),
            }),
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn a_create_writes_the_object_once_and_refuses_the_second() {
        let root = std::env::temp_dir().join(format!("hopster-local-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
        let store = Local::new(&root).unwrap_or_else(|e| panic!("{e}"));
        let at = Path::from("jobs/deep/a.json");
        let create = || PutOptions::from(PutMode::Create);
        let made = store
            .put_opts(&at, PutPayload::from_static(b"first"), create())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let again = store
            .put_opts(&at, PutPayload::from_static(b"second"), create())
            .await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "{again:?}"
        );
        let stored = store.get(&at).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(made.e_tag, None, "a create answers no ETag");
        assert!(stored.meta.e_tag.is_some(), "a read reports one");
        let body = stored.bytes().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&body[..], b"first");
        // Nothing beside the object: no staging file was left, none was made.
        let names: Vec<_> = std::fs::read_dir(root.join("jobs/deep"))
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names, ["a.json"]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_keys_file_is_the_one_local_file_system_maps_it_to() {
        let root = std::env::temp_dir().join(format!("hopster-map-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
        let store = Local::new(&root).unwrap_or_else(|e| panic!("{e}"));
        for key in [
            "jobs/0123abcd.json",
            "index/1700000000000-a_b.json",
            "a b/c%d.json",
            "ünï/cödé",
            "x#y/z?w",
        ] {
            let at = Path::from(key);
            let ours = store.file_path(&at).unwrap_or_else(|e| panic!("{e}"));
            let theirs = store
                .inner
                .path_to_filesystem(&at)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ours, theirs, "{key}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn a_large_create_is_whole_and_made_once() {
        let root = std::env::temp_dir().join(format!("hopster-large-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
        let store = Local::new(&root).unwrap_or_else(|e| panic!("{e}"));
        let at = Path::from("big/object");
        let body: Vec<u8> = (0..INLINE_CREATE_BYTES * 3)
            .map(|i| (i % 251) as u8)
            .collect();
        let create = || PutOptions::from(PutMode::Create);
        store
            .put_opts(&at, PutPayload::from(body.clone()), create())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let again = store
            .put_opts(&at, PutPayload::from(body.clone()), create())
            .await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "{again:?}"
        );
        let stored = store.get(&at).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored.bytes().await.unwrap_or_else(|e| panic!("{e}")), body);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn an_unnamed_file_is_linked_by_its_proc_name_too() {
        // The way a process without CAP_DAC_READ_SEARCH names the file.
        let dir = std::env::temp_dir().join(format!("hopster-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(&dir, flags, Mode::from_bits_truncate(0o666))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut file = std::fs::File::from(fd);
        file.write_all(b"named").unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("a.json");
        link_by_proc_name(&file, &path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            link_by_proc_name(&file, &path),
            Err(Errno::EEXIST),
            "a name that exists is not replaced"
        );
        assert_eq!(
            std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")),
            b"named"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_file_on_the_stores_filesystem_is_linked_in_not_copied() {
        let root = std::env::temp_dir().join(format!("hopster-link-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(root.join("store")).unwrap_or_else(|e| panic!("{e}"));
        let store = Local::new(&root.join("store")).unwrap_or_else(|e| panic!("{e}"));
        let file = root.join("clip.mp4");
        std::fs::write(&file, b"the clip").unwrap_or_else(|e| panic!("{e}"));
        let at = Path::from("results/a.mp4");
        assert!(store.link_in(&file, &at).unwrap_or_else(|e| panic!("{e}")));
        let stored = store.get(&at).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            &stored.bytes().await.unwrap_or_else(|e| panic!("{e}"))[..],
            b"the clip"
        );
        // One file under two names: nothing was copied.
        let meta = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.nlink(), 2);
        // Linked again (a second try of the job): the object is replaced, no name left over.
        assert!(store.link_in(&file, &at).unwrap_or_else(|e| panic!("{e}")));
        let names: Vec<_> = std::fs::read_dir(root.join("store/results"))
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names, ["a.mp4"]);
        // From another filesystem (tmpfs, when the machine has one): not linked.
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() && std::fs::metadata(shm).map(|m| m.dev()).ok() != Some(meta.dev()) {
            let elsewhere = shm.join(format!("hopster-link-{}", std::process::id()));
            std::fs::write(&elsewhere, b"x").unwrap_or_else(|e| panic!("{e}"));
            let linked = store.link_in(&elsewhere, &Path::from("results/b.mp4"));
            let _ = std::fs::remove_file(&elsewhere);
            assert!(!linked.unwrap_or_else(|e| panic!("{e}")));
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
