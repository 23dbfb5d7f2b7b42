//! Opening files in an archive's `.unpacked` folder without following symbolic links.

use std::fs::File;
use std::path::{Component, Path};

use super::error::AsarErrorKind;

/// Opens `<root>/<entry_path>` for reading, where no component from `root`'s last one
/// down may be a symbolic link, and the result must be a regular file.
///
/// The components of `root` above its last one come from the caller and are followed
/// as usual.
pub(crate) fn open_unpacked(root: &Path, entry_path: &str) -> Result<File, AsarErrorKind> {
    let components: Vec<&str> = entry_path.split('/').collect();
    let full_path = components
        .iter()
        .fold(root.to_path_buf(), |path, component| path.join(component));

    // The header parser already checked entry names. This check also rules out names that
    // a platform reads as more than one component, such as `C:` prefixes on Windows.
    for component in &components {
        let mut parts = Path::new(component).components();
        let single = matches!(parts.next(), Some(Component::Normal(part)) if part == *component)
            && parts.next().is_none();
        if !single {
            return Err(AsarErrorKind::InvalidPath {
                reason: "an entry name is not one plain path component here",
            });
        }
    }
    platform::open(root, &components, &full_path)
}

#[cfg(unix)]
mod platform {
    use std::fs::File;
    use std::os::fd::OwnedFd;
    use std::path::{Path, PathBuf};

    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    use rustix::io::Errno;

    use super::AsarErrorKind;

    /// Walks down from `root` with one `openat` per component, each with `O_NOFOLLOW`,
    /// so no component can be swapped for a symbolic link between a check and the open.
    pub(super) fn open(
        root: &Path,
        components: &[&str],
        full_path: &Path,
    ) -> Result<File, AsarErrorKind> {
        let directory_flags =
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut directory =
            rustix::fs::open(root, directory_flags, Mode::empty()).map_err(|errno| {
                classify(errno, rustix::fs::CWD, root, root.to_path_buf(), full_path)
            })?;

        let Some((name, parents)) = components.split_last() else {
            return Err(AsarErrorKind::InvalidPath {
                reason: "the path is empty",
            });
        };
        let mut path = root.to_path_buf();
        for parent in parents {
            path.push(parent);
            directory = rustix::fs::openat(&directory, *parent, directory_flags, Mode::empty())
                .map_err(|errno| {
                    classify(
                        errno,
                        &directory,
                        Path::new(parent),
                        path.clone(),
                        full_path,
                    )
                })?;
        }

        // O_NONBLOCK keeps a FIFO planted in the folder from blocking the open. It has no
        // effect on reads from a regular file, which is the only kind accepted below.
        let file_flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd: OwnedFd = rustix::fs::openat(&directory, *name, file_flags, Mode::empty())
            .map_err(|errno| {
                classify(
                    errno,
                    &directory,
                    Path::new(name),
                    full_path.to_path_buf(),
                    full_path,
                )
            })?;
        let file = File::from(fd);
        let metadata = file
            .metadata()
            .map_err(|source| AsarErrorKind::UnpackedIo {
                path: full_path.to_path_buf(),
                source,
            })?;
        if !metadata.is_file() {
            return Err(AsarErrorKind::UnpackedNotRegular {
                path: full_path.to_path_buf(),
            });
        }
        Ok(file)
    }

    /// Turns a failed open of `path` into a precise error; a missing component reports
    /// the whole `full_path`. The open already failed, so the extra `lstat` only picks
    /// the message and cannot be raced into accepting anything.
    fn classify(
        errno: Errno,
        directory: impl rustix::fd::AsFd,
        name: &Path,
        path: PathBuf,
        full_path: &Path,
    ) -> AsarErrorKind {
        if errno == Errno::NOENT {
            return AsarErrorKind::UnpackedMissing {
                path: full_path.to_path_buf(),
            };
        }
        match rustix::fs::statat(directory, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
                AsarErrorKind::UnpackedSymlink { path }
            }
            Ok(_) if errno == Errno::NOTDIR => AsarErrorKind::UnpackedNotRegular { path },
            _ => AsarErrorKind::UnpackedIo {
                path,
                source: errno.into(),
            },
        }
    }
}

#[cfg(windows)]
mod platform {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::windows::fs::OpenOptionsExt;
    use std::path::{Path, PathBuf};

    use super::AsarErrorKind;

    /// `FILE_FLAG_OPEN_REPARSE_POINT`: open a reparse point (symbolic link or junction)
    /// itself rather than its target.
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;

    /// Checks each component with `symlink_metadata`, then opens the file itself without
    /// following a reparse point and checks the opened handle.
    // NOTE: on Windows, a folder swapped for a junction between its check and the final
    // open is not detected. The Unix code walks with `openat` and has no such gap.
    pub(super) fn open(
        root: &Path,
        components: &[&str],
        full_path: &Path,
    ) -> Result<File, AsarErrorKind> {
        let mut path = root.to_path_buf();
        check_not_link(&path, full_path)?;
        for component in components {
            path.push(component);
            check_not_link(&path, full_path)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(full_path)
            .map_err(|source| io_error(source, full_path.to_path_buf(), full_path))?;
        let metadata = file
            .metadata()
            .map_err(|source| AsarErrorKind::UnpackedIo {
                path: full_path.to_path_buf(),
                source,
            })?;
        if metadata.file_type().is_symlink() {
            return Err(AsarErrorKind::UnpackedSymlink {
                path: full_path.to_path_buf(),
            });
        }
        if !metadata.is_file() {
            return Err(AsarErrorKind::UnpackedNotRegular {
                path: full_path.to_path_buf(),
            });
        }
        Ok(file)
    }

    fn check_not_link(path: &Path, full_path: &Path) -> Result<(), AsarErrorKind> {
        let metadata = std::fs::symlink_metadata(path)
            .map_err(|source| io_error(source, path.to_path_buf(), full_path))?;
        if metadata.file_type().is_symlink() {
            return Err(AsarErrorKind::UnpackedSymlink {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Maps an I/O error to an error kind. A missing component reports the whole `full_path`.
    fn io_error(source: io::Error, path: PathBuf, full_path: &Path) -> AsarErrorKind {
        if source.kind() == io::ErrorKind::NotFound {
            AsarErrorKind::UnpackedMissing {
                path: full_path.to_path_buf(),
            }
        } else {
            AsarErrorKind::UnpackedIo { path, source }
        }
    }
}

#[cfg(not(any(unix, windows)))]
mod platform {
    use std::fs::File;
    use std::path::Path;

    use super::AsarErrorKind;

    pub(super) fn open(
        _root: &Path,
        _components: &[&str],
        full_path: &Path,
    ) -> Result<File, AsarErrorKind> {
        Err(AsarErrorKind::UnpackedIo {
            path: full_path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "unpacked entries need Unix or Windows",
            ),
        })
    }
}
