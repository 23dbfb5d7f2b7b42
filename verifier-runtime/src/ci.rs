//! Reporting to the CI platform a binary runs on: GitHub Actions or Azure Pipelines.
//!
//! Both platforms read commands from the lines a step prints on stdout. GitHub Actions
//! takes `::error file=F::message` and `::add-mask::value`, and reads step outputs and the
//! job summary from the files named by `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`.
//! Azure Pipelines takes `##vso[task.logissue ...]`, `##vso[task.setsecret]`,
//! `##vso[task.setvariable ...]` and `##vso[task.uploadsummary]FILE`. The escaping rules
//! follow the platforms' own libraries: `@actions/core` (`command.ts`, `file-command.ts`)
//! and `azure-pipelines-task-lib` 5.x (`taskcommand.ts`).
//!
//! Outside CI every method does nothing, because the binaries print their own errors to
//! stderr. The module uses only `std`, so both binaries can call it from their default builds.

use std::collections::hash_map::RandomState;
use std::fs::OpenOptions;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::PathBuf;

/// The CI platform a process runs on, as its environment shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CiPlatform {
    /// GitHub Actions (`GITHUB_ACTIONS=true`).
    GitHubActions,
    /// Azure Pipelines (`TF_BUILD=True`).
    AzurePipelines,
    /// Neither: a terminal or another CI system.
    Plain,
}

/// Severity of an annotation or pipeline issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Error,
    Warning,
}

/// Reports errors, warnings, secrets to mask, step outputs and a job summary in the form the
/// current CI platform reads.
///
/// `Debug` shows the platform and the file paths only; masked values are never stored.
#[derive(Debug)]
pub struct CiReporter {
    platform: CiPlatform,
    /// `GITHUB_OUTPUT`: file that step outputs are appended to.
    output_file: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: file that job-summary Markdown is appended to.
    summary_file: Option<PathBuf>,
    /// Folder for Azure Pipelines summary files (`AGENT_TEMPDIRECTORY`, else the system temp folder).
    summary_dir: PathBuf,
    /// Destination of command lines: stdout, or a buffer in unit tests.
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Stdout,
    #[cfg(test)]
    Buffer(std::sync::Mutex<Vec<u8>>),
}

impl CiReporter {
    /// Builds a reporter for the platform the process environment names.
    ///
    /// GitHub Actions when `GITHUB_ACTIONS` is `true`; Azure Pipelines when `TF_BUILD` is
    /// `True` (compared without case, as the agent sets it); otherwise plain, which reports nothing.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var_os(name).map(PathBuf::from))
    }

    fn from_vars(var: impl Fn(&str) -> Option<PathBuf>) -> Self {
        let is = |name: &str, expected: &str| {
            var(name).is_some_and(|value| value.as_os_str().eq_ignore_ascii_case(expected))
        };
        let platform = if is("GITHUB_ACTIONS", "true") {
            CiPlatform::GitHubActions
        } else if is("TF_BUILD", "true") {
            CiPlatform::AzurePipelines
        } else {
            CiPlatform::Plain
        };
        let non_empty = |name: &str| var(name).filter(|path| !path.as_os_str().is_empty());
        Self {
            platform,
            output_file: non_empty("GITHUB_OUTPUT"),
            summary_file: non_empty("GITHUB_STEP_SUMMARY"),
            summary_dir: non_empty("AGENT_TEMPDIRECTORY").unwrap_or_else(std::env::temp_dir),
            sink: Sink::Stdout,
        }
    }

    /// Returns the platform this reporter writes for.
    pub fn platform(&self) -> CiPlatform {
        self.platform
    }

    /// Asks the platform to hide `secret` in every later log line.
    ///
    /// The Azure task library rejects multi-line secrets, so a multi-line value is registered
    /// one line at a time on both platforms. Empty values are ignored. Call it before the value
    /// could be printed.
    pub fn mask(&self, secret: &str) {
        let prefix = match self.platform {
            CiPlatform::GitHubActions => "::add-mask::",
            CiPlatform::AzurePipelines => "##vso[task.setsecret]",
            CiPlatform::Plain => return,
        };
        for line in secret.lines().filter(|line| !line.trim().is_empty()) {
            let escaped = match self.platform {
                CiPlatform::AzurePipelines => escape_azure_data(line),
                _ => escape_github_data(line),
            };
            self.emit(&format!("{prefix}{escaped}"));
        }
    }

    /// Reports a failure as a GitHub `::error` annotation or an Azure Pipelines error issue,
    /// attached to `file` when given.
    pub fn error(&self, message: &str, file: Option<&str>) {
        self.issue(Severity::Error, message, file);
    }

    /// Reports a problem that does not fail the step, like [`CiReporter::error`].
    pub fn warning(&self, message: &str, file: Option<&str>) {
        self.issue(Severity::Warning, message, file);
    }

    fn issue(&self, severity: Severity, message: &str, file: Option<&str>) {
        if let Some(line) = format_issue(self.platform, severity, message, file) {
            self.emit(&line);
        }
    }

    /// Sets the step output `name` to `value`.
    ///
    /// GitHub Actions: appends `name=value` to the `GITHUB_OUTPUT` file, or the heredoc form
    /// `name<<DELIMITER` when the value spans lines. Azure Pipelines: prints
    /// `##vso[task.setvariable variable=NAME;isOutput=true]VALUE`.
    ///
    /// # Errors
    ///
    /// Fails if the output file cannot be written, if GitHub Actions is detected but
    /// `GITHUB_OUTPUT` is unset, or if `name` is empty or contains `=`, a newline or `<<`.
    pub fn set_output(&self, name: &str, value: &str) -> io::Result<()> {
        match self.platform {
            CiPlatform::GitHubActions => {
                let entry = format_github_output(name, value, &random_delimiter)?;
                let path = self.output_file.as_ref().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "GITHUB_ACTIONS is true but GITHUB_OUTPUT is not set, so step outputs cannot be written",
                    )
                })?;
                append_to(path, &entry)
            }
            CiPlatform::AzurePipelines => {
                check_output_name(name)?;
                self.emit(&format!(
                    "##vso[task.setvariable variable={};isOutput=true]{}",
                    escape_azure_property(name),
                    escape_azure_data(value)
                ));
                Ok(())
            }
            CiPlatform::Plain => Ok(()),
        }
    }

    /// Adds Markdown to the job summary.
    ///
    /// GitHub Actions: appends to the `GITHUB_STEP_SUMMARY` file. Azure Pipelines: writes the
    /// Markdown to a new file in `AGENT_TEMPDIRECTORY` (else the system temp folder) and prints
    /// `##vso[task.uploadsummary]FILE`, which adds it as a section of the run summary.
    ///
    /// # Errors
    ///
    /// Fails if the summary file cannot be written, or if GitHub Actions is detected but
    /// `GITHUB_STEP_SUMMARY` is unset.
    pub fn append_summary(&self, markdown: &str) -> io::Result<()> {
        match self.platform {
            CiPlatform::GitHubActions => {
                let path = self.summary_file.as_ref().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "GITHUB_ACTIONS is true but GITHUB_STEP_SUMMARY is not set, so the job summary cannot be written",
                    )
                })?;
                let mut text = markdown.to_owned();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                append_to(path, &text)
            }
            CiPlatform::AzurePipelines => {
                let path = self.write_new_summary_file(markdown)?;
                self.emit(&format!(
                    "##vso[task.uploadsummary]{}",
                    escape_azure_data(&path.to_string_lossy())
                ));
                Ok(())
            }
            CiPlatform::Plain => Ok(()),
        }
    }

    /// Writes `markdown` to a file that did not exist before (`create_new`), so a file planted
    /// in a shared temp folder is never followed or overwritten.
    fn write_new_summary_file(&self, markdown: &str) -> io::Result<PathBuf> {
        let mut attempts = 0;
        loop {
            let name = format!(
                "midcore-summary-{}-{:016x}.md",
                std::process::id(),
                random_u64()
            );
            let path = self.summary_dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(markdown.as_bytes())?;
                    file.flush()?;
                    return Ok(path);
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1;
                }
                Err(error) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("cannot create the summary file {}: {error}", path.display()),
                    ));
                }
            }
        }
    }

    /// Prints one command line. Each line is written with a single `write_all`, so lines from
    /// threads do not interleave. A failed write to stdout is ignored, because the command is
    /// advisory and the binary's own exit code still reports the result.
    fn emit(&self, line: &str) {
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        match &self.sink {
            Sink::Stdout => {
                let mut stdout = io::stdout().lock();
                let _ignored = stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush());
            }
            #[cfg(test)]
            Sink::Buffer(buffer) => {
                if let Ok(mut buffer) = buffer.lock() {
                    buffer.extend_from_slice(text.as_bytes());
                }
            }
        }
    }
}

fn format_issue(
    platform: CiPlatform,
    severity: Severity,
    message: &str,
    file: Option<&str>,
) -> Option<String> {
    match platform {
        CiPlatform::GitHubActions => {
            let command = match severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let properties = match file {
                Some(file) => format!(" file={}", escape_github_property(file)),
                None => String::new(),
            };
            Some(format!(
                "::{command}{properties}::{}",
                escape_github_data(message)
            ))
        }
        CiPlatform::AzurePipelines => {
            let kind = match severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let source = match file {
                Some(file) => format!(";sourcepath={}", escape_azure_property(file)),
                None => String::new(),
            };
            Some(format!(
                "##vso[task.logissue type={kind}{source}]{}",
                escape_azure_data(message)
            ))
        }
        CiPlatform::Plain => None,
    }
}

/// Makes text that may contain file names safe to print as one line of a CI
/// log. Control characters become escapes such as `\n`, so a name cannot start
/// a new line that a runner would read as a `::command::`. The prefix of Azure
/// Pipelines logging commands, `##vso[`, becomes `##vso\[` wherever it occurs,
/// without relying on where in a line the agent looks for it. Other text is
/// returned unchanged.
pub fn plain_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) && !text.contains("##vso[") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut line = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        if character.is_control() {
            line.extend(character.escape_default());
        } else {
            line.push(character);
        }
    }
    std::borrow::Cow::Owned(line.replace("##vso[", "##vso\\["))
}

/// Makes one line of JSON safe to print in a CI log: `##vso[` inside a string
/// becomes `##vso\u005b`, which decodes to the same text. JSON already escapes
/// control characters.
pub fn plain_json_line(json: &str) -> std::borrow::Cow<'_, str> {
    if json.contains("##vso[") {
        std::borrow::Cow::Owned(json.replace("##vso[", "##vso\\u005b"))
    } else {
        std::borrow::Cow::Borrowed(json)
    }
}

/// Escapes a GitHub workflow command's message (`escapeData` in `@actions/core`).
fn escape_github_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a GitHub workflow command's property value (`escapeProperty` in `@actions/core`).
fn escape_github_property(text: &str) -> String {
    escape_github_data(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// Escapes an Azure Pipelines logging command's message (`escapedata` in the task library).
fn escape_azure_data(text: &str) -> String {
    text.replace('%', "%AZP25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes an Azure Pipelines logging command's property value (`escape` in the task library).
fn escape_azure_property(text: &str) -> String {
    escape_azure_data(text)
        .replace(']', "%5D")
        .replace(';', "%3B")
}

/// Rejects output names that would break the output file's line format.
fn check_output_name(name: &str) -> io::Result<()> {
    let invalid =
        name.is_empty() || name.contains(['=', '\r', '\n', ';', ']']) || name.contains("<<");
    if invalid {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid step output name {name:?}: it must be non-empty and contain no '=', '<<', ';', ']' or line break"
            ),
        ));
    }
    Ok(())
}

/// Formats one entry of the `GITHUB_OUTPUT` file.
///
/// A single-line value is written as `name=value`. A value with a line break uses the runner's
/// heredoc form with a random delimiter that does not occur in the value, as `@actions/core`
/// does, so a value cannot end the block early and inject other outputs.
fn format_github_output(
    name: &str,
    value: &str,
    delimiter: &dyn Fn() -> String,
) -> io::Result<String> {
    check_output_name(name)?;
    if !value.contains(['\r', '\n']) {
        return Ok(format!("{name}={value}\n"));
    }
    let delimiter = loop {
        let candidate = delimiter();
        if !value.contains(&candidate) && !name.contains(&candidate) {
            break candidate;
        }
    };
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

fn random_delimiter() -> String {
    format!("ghadelimiter_{:016x}{:016x}", random_u64(), random_u64())
}

/// Returns 64 unpredictable bits from the standard library's randomly keyed SipHash.
///
/// `RandomState::new` takes fresh keys from the operating system's generator once per thread
/// and then increments them, so each call gives a different value. This is enough for file
/// names and heredoc delimiters; it is not a cryptographic generator.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish()
}

fn append_to(path: &PathBuf, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot open {} for appending: {error}", path.display()),
            )
        })?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]

    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[test]
    fn plain_line_neutralizes_commands() {
        assert_eq!(plain_line("app/file.txt"), "app/file.txt");
        assert_eq!(
            plain_line("a\n::stop-commands::x\r"),
            "a\\n::stop-commands::x\\r"
        );
        assert_eq!(
            plain_line("##vso[task.complete result=Succeeded]"),
            "##vso\\[task.complete result=Succeeded]"
        );
        assert!(!plain_line("x\u{1b}[31m").contains('\u{1b}'));
    }

    #[cfg(feature = "cli")]
    #[test]
    fn plain_json_line_keeps_value() {
        let value = serde_json::json!({ "path": "##vso[task.setvariable variable=x]y" });
        let line = plain_json_line(&value.to_string()).into_owned();
        assert!(!line.contains("##vso["), "{line}");
        let decoded: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(decoded, value);
    }

    fn reporter(vars: &[(&str, &str)]) -> CiReporter {
        let vars: HashMap<String, PathBuf> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), PathBuf::from(value)))
            .collect();
        let mut reporter = CiReporter::from_vars(|name| vars.get(name).cloned());
        reporter.sink = Sink::Buffer(Mutex::new(Vec::new()));
        reporter
    }

    fn printed(reporter: &CiReporter) -> String {
        match &reporter.sink {
            Sink::Buffer(buffer) => String::from_utf8(buffer.lock().unwrap().clone()).unwrap(),
            Sink::Stdout => String::new(),
        }
    }

    #[test]
    fn platform_github_when_github_actions_true() {
        let reporter = reporter(&[("GITHUB_ACTIONS", "true")]);
        assert_eq!(reporter.platform(), CiPlatform::GitHubActions);
    }

    #[test]
    fn platform_azure_when_tf_build_true() {
        let reporter = reporter(&[("TF_BUILD", "True")]);
        assert_eq!(reporter.platform(), CiPlatform::AzurePipelines);
    }

    #[test]
    fn platform_plain_when_github_actions_false() {
        let reporter = reporter(&[("GITHUB_ACTIONS", "false"), ("TF_BUILD", "1")]);
        assert_eq!(reporter.platform(), CiPlatform::Plain);
    }

    #[test]
    fn github_data_escapes_percent_and_line_breaks() {
        assert_eq!(escape_github_data("50%\r\nnext"), "50%25%0D%0Anext");
    }

    #[test]
    fn github_data_keeps_colon_and_comma() {
        assert_eq!(escape_github_data("a:b,c"), "a:b,c");
    }

    #[test]
    fn github_property_escapes_colon_and_comma() {
        assert_eq!(escape_github_property("C:\\a,b%\n"), "C%3A\\a%2Cb%25%0A");
    }

    #[test]
    fn azure_data_escapes_percent_and_line_breaks() {
        assert_eq!(escape_azure_data("5%\r\n]"), "5%AZP25%0D%0A]");
    }

    #[test]
    fn azure_property_escapes_bracket_and_semicolon() {
        assert_eq!(escape_azure_property("a;b]c%"), "a%3Bb%5Dc%AZP25");
    }

    #[test]
    fn github_error_names_file_property() {
        let reporter = reporter(&[("GITHUB_ACTIONS", "true")]);
        reporter.error("manifest invalid: line 1\nline 2", Some("build/a,b:c.json"));
        assert_eq!(
            printed(&reporter),
            "::error file=build/a%2Cb%3Ac.json::manifest invalid: line 1%0Aline 2\n"
        );
    }

    #[test]
    fn github_warning_without_file_has_no_properties() {
        let reporter = reporter(&[("GITHUB_ACTIONS", "true")]);
        reporter.warning("slow vault", None);
        assert_eq!(printed(&reporter), "::warning::slow vault\n");
    }

    #[test]
    fn azure_error_is_logissue_with_sourcepath() {
        let reporter = reporter(&[("TF_BUILD", "True")]);
        reporter.error("forbidden; role missing", Some("app;1/x]"));
        assert_eq!(
            printed(&reporter),
            "##vso[task.logissue type=error;sourcepath=app%3B1/x%5D]forbidden; role missing\n"
        );
    }

    #[test]
    fn azure_warning_without_file_has_type_only() {
        let reporter = reporter(&[("TF_BUILD", "True")]);
        reporter.warning("throttled", None);
        assert_eq!(
            printed(&reporter),
            "##vso[task.logissue type=warning]throttled\n"
        );
    }

    #[test]
    fn plain_reporter_prints_nothing() {
        let reporter = reporter(&[]);
        reporter.error("failed", Some("f"));
        reporter.mask("secret");
        assert_eq!(printed(&reporter), "");
    }

    #[test]
    fn github_mask_registers_each_line() {
        let reporter = reporter(&[("GITHUB_ACTIONS", "true")]);
        reporter.mask("first%\nsecond\n\n");
        assert_eq!(
            printed(&reporter),
            "::add-mask::first%25\n::add-mask::second\n"
        );
    }

    #[test]
    fn azure_mask_is_setsecret() {
        let reporter = reporter(&[("TF_BUILD", "True")]);
        reporter.mask("eyJ0eXAi.abc%");
        assert_eq!(
            printed(&reporter),
            "##vso[task.setsecret]eyJ0eXAi.abc%AZP25\n"
        );
    }

    #[test]
    fn mask_ignores_empty_value() {
        let reporter = reporter(&[("GITHUB_ACTIONS", "true")]);
        reporter.mask("");
        assert_eq!(printed(&reporter), "");
    }

    #[test]
    fn github_output_single_line_is_name_equals_value() {
        let entry =
            format_github_output("key-id", "sha256:ab=cd", &|| "unused".to_owned()).unwrap();
        assert_eq!(entry, "key-id=sha256:ab=cd\n");
    }

    #[test]
    fn github_output_multi_line_uses_heredoc() {
        let entry = format_github_output("notes", "a\nb", &|| "DELIM".to_owned()).unwrap();
        assert_eq!(entry, "notes<<DELIM\na\nb\nDELIM\n");
    }

    #[test]
    fn github_output_delimiter_avoids_value_text() {
        let candidates = Mutex::new(vec!["SAFE".to_owned(), "EOF".to_owned()]);
        let next = || candidates.lock().unwrap().pop().unwrap();
        let entry = format_github_output("notes", "x\nEOF\ny", &next).unwrap();
        assert_eq!(entry, "notes<<SAFE\nx\nEOF\ny\nSAFE\n");
    }

    #[test]
    fn github_output_rejects_name_with_equals() {
        let result = format_github_output("a=b", "v", &|| "D".to_owned());
        assert!(result.is_err());
    }

    #[test]
    fn github_output_rejects_name_with_heredoc_marker() {
        let result = format_github_output("a<<b", "v", &|| "D".to_owned());
        assert!(result.is_err());
    }

    #[test]
    fn github_set_output_appends_to_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output");
        std::fs::write(&path, "earlier=1\n").unwrap();
        let reporter = reporter(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", path.to_str().unwrap()),
        ]);
        reporter.set_output("files", "42").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier=1\nfiles=42\n"
        );
    }

    #[test]
    fn github_set_output_without_file_fails() {
        let reporter = reporter(&[("GITHUB_ACTIONS", "true")]);
        assert!(reporter.set_output("files", "42").is_err());
    }

    #[test]
    fn github_random_delimiters_differ() {
        assert_ne!(random_delimiter(), random_delimiter());
    }

    #[test]
    fn azure_set_output_prints_setvariable() {
        let reporter = reporter(&[("TF_BUILD", "True")]);
        reporter
            .set_output("manifest", "C:\\b\\integrity.json")
            .unwrap();
        assert_eq!(
            printed(&reporter),
            "##vso[task.setvariable variable=manifest;isOutput=true]C:\\b\\integrity.json\n"
        );
    }

    #[test]
    fn azure_set_output_rejects_name_with_semicolon() {
        let reporter = reporter(&[("TF_BUILD", "True")]);
        assert!(reporter.set_output("a;issecret=true", "v").is_err());
    }

    #[test]
    fn github_summary_appends_with_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        let reporter = reporter(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", path.to_str().unwrap()),
        ]);
        reporter.append_summary("### Signed").unwrap();
        reporter.append_summary("| a | b |\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "### Signed\n| a | b |\n"
        );
    }

    #[test]
    fn azure_summary_writes_file_and_uploads_it() {
        let dir = tempfile::tempdir().unwrap();
        let reporter = reporter(&[
            ("TF_BUILD", "True"),
            ("AGENT_TEMPDIRECTORY", dir.path().to_str().unwrap()),
        ]);
        reporter.append_summary("### Signed\n").unwrap();
        let printed = printed(&reporter);
        let path = printed
            .strip_prefix("##vso[task.uploadsummary]")
            .unwrap()
            .trim_end();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "### Signed\n");
    }

    #[test]
    fn azure_summary_file_is_inside_agent_temp() {
        let dir = tempfile::tempdir().unwrap();
        let reporter = reporter(&[
            ("TF_BUILD", "True"),
            ("AGENT_TEMPDIRECTORY", dir.path().to_str().unwrap()),
        ]);
        reporter.append_summary("x").unwrap();
        let printed = printed(&reporter);
        assert!(printed.contains(dir.path().to_str().unwrap()));
    }
}
