//! Link targets and their resolution inside the archive.
//!
//! A link's target is a path relative to the archive root (what `@electron/asar` writes),
//! and any component of a path, the last included, may itself be a link. Electron follows
//! links on lookup and stops after 40; this reader resolves every link once when the archive
//! is opened, so an archive with an escaping, dangling or cyclic link is rejected before
//! anyone can sign or run it.

use super::error::{AsarErrorKind, HeaderError};
use super::header::MAX_PATH_LEN;
use super::{Entry, EntryKind, MAX_LINK_DEPTH};

/// The end of a link: the index of the file or directory entry it reaches, and the
/// number of links followed to get there (the link itself included).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resolved {
    target: usize,
    hops: usize,
}

/// The resolution of every link entry, indexed like the entries.
#[derive(Debug, Default)]
pub(crate) struct LinkTable {
    resolved: Vec<Option<Resolved>>,
}

/// Checks the form of a link target: a relative path of plain components.
pub(crate) fn check_target(target: &str) -> Result<(), AsarErrorKind> {
    let escapes = |reason| AsarErrorKind::LinkEscapes {
        target: target.to_owned(),
        reason,
    };
    if target.is_empty() {
        return Err(escapes("the target is empty"));
    }
    if target.len() > MAX_PATH_LEN {
        return Err(AsarErrorKind::PathTooLong {
            len: target.len(),
            max: MAX_PATH_LEN,
        });
    }
    if target.starts_with('/') {
        return Err(escapes("the target is an absolute path"));
    }
    if target.contains('\\') {
        return Err(escapes("the target contains `\\`"));
    }
    for component in target.split('/') {
        match component {
            ".." => return Err(escapes("the target contains `..`")),
            "." => return Err(escapes("the target contains `.`")),
            "" => return Err(escapes("the target contains an empty component")),
            _ if component.contains('\0') => {
                return Err(escapes("the target contains a NUL character"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Resolves every link in `entries` (sorted by path), rejecting dangling links, cycles
/// and chains longer than [`MAX_LINK_DEPTH`].
pub(crate) fn resolve_all(entries: &[Entry]) -> Result<LinkTable, HeaderError> {
    let mut resolver = Resolver {
        entries,
        resolved: vec![None; entries.len()],
        following: Vec::new(),
    };
    for (index, entry) in entries.iter().enumerate() {
        if matches!(entry.kind, EntryKind::Link { .. }) {
            resolver.follow(index)?;
        }
    }
    Ok(LinkTable {
        resolved: resolver.resolved,
    })
}

/// Resolves `path` to the index of a file or directory entry, following links.
pub(crate) fn resolve_path(
    entries: &[Entry],
    table: &LinkTable,
    path: &str,
) -> Result<usize, HeaderError> {
    for component in path.split('/') {
        let reason = match component {
            "" => "the path is empty or has an empty component",
            "." | ".." => "the path contains `.` or `..`",
            _ => continue,
        };
        return Err(HeaderError::entry(
            path,
            AsarErrorKind::InvalidPath { reason },
        ));
    }
    let mut lookup = TableLookup { entries, table };
    match walk(&mut lookup, path.split('/')) {
        Ok((Some(index), _)) => Ok(index),
        // A path with at least one component never ends at the root.
        Ok((None, _)) => Err(HeaderError::entry(path, AsarErrorKind::NotFound)),
        Err(error) if error.entry.is_none() => Err(HeaderError::entry(path, error.kind)),
        Err(error) => Err(error),
    }
}

/// Finds the entry with exactly this path.
pub(crate) fn find(entries: &[Entry], path: &str) -> Option<usize> {
    entries
        .binary_search_by(|entry| entry.path.as_str().cmp(path))
        .ok()
}

/// Link following for [`walk`]: recursive while the table is being built, and a lookup
/// in the finished table afterwards.
trait FollowLink {
    fn entries(&self) -> &[Entry];
    fn follow(&mut self, index: usize) -> Result<Resolved, HeaderError>;
}

/// Walks `components` from the root. Returns the entry reached (`None` for the root)
/// and the number of links followed.
fn walk<'c>(
    lookup: &mut impl FollowLink,
    components: impl Iterator<Item = &'c str>,
) -> Result<(Option<usize>, usize), HeaderError> {
    let mut current: Option<usize> = None;
    let mut hops = 0usize;
    for component in components {
        // 1. The path so far must be a directory.
        let candidate = match current {
            None => component.to_owned(),
            Some(index) => {
                let entry = &lookup.entries()[index];
                if !matches!(entry.kind, EntryKind::Directory { .. }) {
                    return Err(HeaderError::new(AsarErrorKind::NotADirectory {
                        component: entry.path.clone(),
                    }));
                }
                format!("{}/{component}", entry.path)
            }
        };

        // 2. Look up the next component; follow it if it is a link.
        let index =
            find(lookup.entries(), &candidate).ok_or(HeaderError::new(AsarErrorKind::NotFound))?;
        if matches!(lookup.entries()[index].kind, EntryKind::Link { .. }) {
            let resolved = lookup.follow(index)?;
            hops += resolved.hops;
            if hops > MAX_LINK_DEPTH {
                return Err(HeaderError::new(AsarErrorKind::LinkDepthExceeded {
                    max: MAX_LINK_DEPTH,
                }));
            }
            current = Some(resolved.target);
        } else {
            current = Some(index);
        }
    }
    Ok((current, hops))
}

/// Builds the link table: follows each link once, remembering the result, and detects
/// cycles by the links currently being followed.
struct Resolver<'a> {
    entries: &'a [Entry],
    resolved: Vec<Option<Resolved>>,
    following: Vec<usize>,
}

impl FollowLink for Resolver<'_> {
    fn entries(&self) -> &[Entry] {
        self.entries
    }

    fn follow(&mut self, index: usize) -> Result<Resolved, HeaderError> {
        if let Some(resolved) = self.resolved[index] {
            return Ok(resolved);
        }
        let entry = &self.entries[index];
        let EntryKind::Link { target, .. } = &entry.kind else {
            return Err(HeaderError::entry(
                entry.path.as_str(),
                AsarErrorKind::NotFound,
            ));
        };
        let fail = |kind| HeaderError::entry(entry.path.as_str(), kind);

        // Each nested call adds one link, so this also bounds the recursion depth.
        if self.following.contains(&index) {
            return Err(fail(AsarErrorKind::LinkCycle {
                target: target.clone(),
            }));
        }
        if self.following.len() >= MAX_LINK_DEPTH {
            return Err(fail(AsarErrorKind::LinkDepthExceeded {
                max: MAX_LINK_DEPTH,
            }));
        }

        self.following.push(index);
        let outcome = walk(self, target.split('/'));
        self.following.pop();

        // Errors from a link further down keep that link's path; errors about this
        // link's own target are reported on this link.
        let (reached, hops) = match outcome {
            Ok(found) => found,
            Err(error) if error.entry.is_some() => return Err(error),
            Err(error) => {
                let kind = match error.kind {
                    AsarErrorKind::NotFound | AsarErrorKind::NotADirectory { .. } => {
                        AsarErrorKind::LinkTargetNotFound {
                            target: target.clone(),
                        }
                    }
                    other => other,
                };
                return Err(fail(kind));
            }
        };
        let Some(reached) = reached else {
            return Err(fail(AsarErrorKind::LinkEscapes {
                target: target.clone(),
                reason: "the target is the root",
            }));
        };
        let hops = hops + 1;
        if hops > MAX_LINK_DEPTH {
            return Err(fail(AsarErrorKind::LinkDepthExceeded {
                max: MAX_LINK_DEPTH,
            }));
        }
        let resolved = Resolved {
            target: reached,
            hops,
        };
        self.resolved[index] = Some(resolved);
        Ok(resolved)
    }
}

/// Follows links through a finished table.
struct TableLookup<'a> {
    entries: &'a [Entry],
    table: &'a LinkTable,
}

impl FollowLink for TableLookup<'_> {
    fn entries(&self) -> &[Entry] {
        self.entries
    }

    fn follow(&mut self, index: usize) -> Result<Resolved, HeaderError> {
        // Every link was resolved when the archive was opened, so this finds one.
        if let Some(resolved) = self.table.resolved.get(index).copied().flatten() {
            return Ok(resolved);
        }
        let entry = &self.entries[index];
        let target = match &entry.kind {
            EntryKind::Link { target, .. } => target.clone(),
            _ => String::new(),
        };
        Err(HeaderError::entry(
            entry.path.as_str(),
            AsarErrorKind::LinkTargetNotFound { target },
        ))
    }
}
