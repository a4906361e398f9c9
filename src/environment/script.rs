//! The fast path: evaluates the subset of POSIX sh that NixOS writes into `/etc/set-environment`.
//!
//! `nixos/modules/config/shells-environment.nix` generates `export NAME="value"` lines whose
//! values reference `$HOME`, `$USER`, `${XDG_STATE_HOME}`..., then `environment.extraInit`,
//! which by default holds more exports and nix-channel's
//! `if [ -e "$HOME/.nix-defexpr/channels" ]; then export NIX_PATH="...${NIX_PATH:+:$NIX_PATH}"; fi`.
//! Spawning a shell for that costs milliseconds on every launch; this evaluator takes
//! microseconds. Anything outside the subset is refused with its line number, never guessed
//! at, and the caller sources the file with a real shell instead.
//!
//! The subset: comments; `NAME=word...` (sequential, unexported unless already exported);
//! `export NAME=word... NAME...`; `unset NAME...`; `if [ test ]; then ... [else ...] fi` and
//! `test`, with `-n -z -e -f -d -h -L -s = !=`, `!`, and `-a`/`-o` between them; `;`
//! between commands, and `&&`/`||` lists of them (also as an `if` condition:
//! `if [ -z "$A" ] && [ -n "$B" ]; then`, as NixOS' agent and Docker modules write). Words:
//! plain text, `'...'`, `$'...'` (bash's and POSIX 2024's C-style quoting, in which bash
//! also prints `export -p`), `"..."` with backslash escapes, `\x`, line continuations,
//! `$NAME`, `${NAME}` and `${NAME[:]-word}`/`${NAME[:]+word}`. Refused: command
//! substitution, pipelines, redirections, loops, `case`, functions, `.`/`source`, other
//! commands, special parameters, globbing, tilde and brace expansion, changes to IFS, and
//! unquoted expansions that a shell would split or glob.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::Env;

/// Why the fast path refused a script: the first construct outside the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// 1-based line where the construct starts.
    pub(crate) line: usize,
    /// What was found, e.g. "command substitution".
    pub(crate) what: &'static str,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unsupported construct at line {}: {}",
            self.line, self.what
        )
    }
}

impl std::error::Error for Unsupported {}

/// Runs `script` over `env` as `sh -c '. script'` would and returns the exported variables.
///
/// New exported names are appended in assignment order, updated ones keep their position.
/// File tests (`-e`, `-d`...) look at the real filesystem. On `Err` nothing is applied: the
/// caller still has `env` and can hand the script to a real shell.
pub fn evaluate(script: &[u8], env: &Env) -> Result<Env, Unsupported> {
    let mut shell = Shell {
        exported: env.clone(),
        local: Env::new(),
        frames: Vec::new(),
        status: true,
    };
    let mut lexer = Lexer {
        s: script,
        pos: 0,
        line: 1,
    };
    let mut connector = Sep::End;
    while let Some((line, words, sep)) = lexer.command()? {
        if sep != Sep::End && words.first().and_then(keyword) == Some(&b"fi"[..]) {
            // The status of a whole `if` is not modelled.
            return Err(Unsupported {
                line,
                what: "`&&` or `||` after `fi`",
            });
        }
        shell.run_listed(line, &words, connector)?;
        connector = sep;
    }
    if connector != Sep::End {
        return Err(Unsupported {
            line: lexer.line,
            what: "`&&` or `||` without a command after it",
        });
    }
    if shell.frames.is_empty() {
        Ok(shell.exported)
    } else {
        Err(Unsupported {
            line: lexer.line,
            what: "`if` without `fi`",
        })
    }
}

/// One piece of a word, as written.
#[derive(Debug)]
enum Part {
    /// Literal bytes; `quoted` ones are immune to globbing and keywords.
    Text { bytes: Vec<u8>, quoted: bool },
    /// `$NAME` or `${NAME...}`; `quoted` ones are immune to field splitting.
    Param {
        name: Vec<u8>,
        op: Op,
        word: Vec<Part>,
        quoted: bool,
    },
}

/// The operator of a `${NAME...}` expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Plain,
    /// `${NAME-word}` (`colon`: `${NAME:-word}`, also when empty).
    Default {
        colon: bool,
    },
    /// `${NAME+word}` (`colon`: `${NAME:+word}`, only when non-empty).
    Alternative {
        colon: bool,
    },
}

type Word = Vec<Part>;

/// What ended a simple command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// A newline, `;` or the end of the file.
    End,
    /// `&&`: the next command runs if this one succeeded.
    And,
    /// `||`: the next command runs if this one failed.
    Or,
}

/// Bytes that a shell treats specially when unquoted and that the subset does not model.
const GLOB_OR_TILDE_OR_BRACE: &[u8] = b"*?[~{}";
/// Bytes that make an unquoted expansion split or glob.
const SPLIT_OR_GLOB: &[u8] = b" \t\n*?[";

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A valid shell variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub(crate) fn is_name(s: &[u8]) -> bool {
    s.first().is_some_and(|&b| is_name_start(b)) && s.iter().all(|&b| is_name_byte(b))
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.s.get(self.pos + offset).copied()
    }

    /// Consumes one byte, counting lines.
    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    fn refuse<T>(&self, what: &'static str) -> Result<T, Unsupported> {
        Err(Unsupported {
            line: self.line,
            what,
        })
    }

    /// The next simple command: its first line, its words and what ended it; `None` at the
    /// end.
    fn command(&mut self) -> Result<Option<(usize, Vec<Word>, Sep)>, Unsupported> {
        let mut words = Vec::new();
        let mut start = self.line;
        loop {
            match self.peek() {
                None => break,
                Some(b' ' | b'\t') => {
                    self.bump();
                }
                Some(b'\\') if self.peek_at(1) == Some(b'\n') => {
                    self.bump();
                    self.bump();
                }
                Some(b'#') => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.bump();
                    }
                }
                Some(b'\n') => {
                    self.bump();
                    if !words.is_empty() {
                        break;
                    }
                    start = self.line;
                }
                Some(b';') => {
                    if words.is_empty() || self.peek_at(1) == Some(b';') {
                        return self.refuse("`;` without a command before it");
                    }
                    self.bump();
                    break;
                }
                Some(b @ (b'&' | b'|')) if self.peek_at(1) == Some(b) => {
                    if words.is_empty() {
                        return self.refuse("`&&` or `||` without a command before it");
                    }
                    self.pos += 2;
                    let sep = if b == b'&' { Sep::And } else { Sep::Or };
                    return Ok(Some((start, words, sep)));
                }
                Some(0) => return self.refuse("NUL byte"),
                Some(_) => words.push(self.word()?),
            }
        }
        Ok((!words.is_empty()).then_some((start, words, Sep::End)))
    }

    /// One word, up to an unquoted blank, newline, `;` or the end.
    fn word(&mut self) -> Result<Word, Unsupported> {
        let mut parts = Vec::new();
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b';' => break,
                b'\'' => {
                    self.bump();
                    let mut bytes = Vec::new();
                    loop {
                        match self.bump() {
                            None => return self.refuse("unterminated single quote"),
                            Some(b'\'') => break,
                            Some(b) => bytes.push(b),
                        }
                    }
                    push_text(&mut parts, &bytes, true);
                }
                b'"' => {
                    self.bump();
                    self.double_quoted(&mut parts)?;
                }
                b'\\' => {
                    self.bump();
                    match self.bump() {
                        None => return self.refuse("backslash at the end of the file"),
                        Some(b'\n') => {}
                        Some(b) => push_text(&mut parts, &[b], true),
                    }
                }
                b'$' => {
                    self.bump();
                    self.dollar(&mut parts, false)?;
                }
                b'`' => return self.refuse("command substitution"),
                b'|' | b'&' if self.peek_at(1) == Some(b) => break,
                b'|' | b'&' => return self.refuse("pipeline, list or background job"),
                b'<' | b'>' => return self.refuse("redirection"),
                b'(' | b')' => return self.refuse("subshell or function definition"),
                0 => return self.refuse("NUL byte"),
                _ => {
                    self.bump();
                    push_text(&mut parts, &[b], false);
                }
            }
        }
        Ok(parts)
    }

    /// The inside of `"..."`, after the opening quote.
    fn double_quoted(&mut self, parts: &mut Vec<Part>) -> Result<(), Unsupported> {
        // `""` is a word of its own, even though it holds nothing.
        push_text(parts, b"", true);
        loop {
            match self.bump() {
                None => return self.refuse("unterminated double quote"),
                Some(b'"') => return Ok(()),
                Some(b'\\') => match self.bump() {
                    None => return self.refuse("unterminated double quote"),
                    Some(b'\n') => {}
                    Some(b @ (b'$' | b'`' | b'"' | b'\\')) => push_text(parts, &[b], true),
                    // Any other escaped byte keeps its backslash (POSIX 2.2.3).
                    Some(b) => push_text(parts, &[b'\\', b], true),
                },
                Some(b'$') => self.dollar(parts, true)?,
                Some(b'`') => return self.refuse("command substitution"),
                Some(0) => return self.refuse("NUL byte"),
                Some(b) => push_text(parts, &[b], true),
            }
        }
    }

    /// What follows a `$`.
    fn dollar(&mut self, parts: &mut Vec<Part>, quoted: bool) -> Result<(), Unsupported> {
        match self.peek() {
            Some(b'{') => {
                self.bump();
                self.braced(parts, quoted)
            }
            Some(b) if is_name_start(b) => {
                let name = self.name();
                parts.push(Part::Param {
                    name,
                    op: Op::Plain,
                    word: Vec::new(),
                    quoted,
                });
                Ok(())
            }
            Some(b'(') => self.refuse("command substitution"),
            Some(b'0'..=b'9' | b'@' | b'*' | b'#' | b'?' | b'-' | b'$' | b'!') => {
                self.refuse("special parameter")
            }
            Some(b'\'') if !quoted => {
                self.bump();
                self.ansi_c(parts)
            }
            Some(b'"') if !quoted => self.refuse("`$\"...\"` quoting"),
            // A `$` followed by anything else is literal.
            _ => {
                push_text(parts, b"$", quoted);
                Ok(())
            }
        }
    }

    /// The inside of `$'...'`, after the opening quote: C-style escapes as bash decodes them.
    fn ansi_c(&mut self, parts: &mut Vec<Part>) -> Result<(), Unsupported> {
        let mut bytes = Vec::new();
        loop {
            let b = match self.bump() {
                None => return self.refuse("unterminated $'...'"),
                Some(b'\'') => break,
                Some(0) => return self.refuse("NUL byte"),
                Some(b'\\') => match self.bump() {
                    None => return self.refuse("unterminated $'...'"),
                    Some(b'a') => 0x07,
                    Some(b'b') => 0x08,
                    Some(b'e' | b'E') => 0x1b,
                    Some(b'f') => 0x0c,
                    Some(b'n') => b'\n',
                    Some(b'r') => b'\r',
                    Some(b't') => b'\t',
                    Some(b'v') => 0x0b,
                    Some(b @ (b'\\' | b'\'' | b'"' | b'?')) => b,
                    Some(d @ b'0'..=b'7') => {
                        let mut value = u32::from(d - b'0');
                        for _ in 0..2 {
                            match self.peek() {
                                Some(d @ b'0'..=b'7') => {
                                    self.bump();
                                    value = value * 8 + u32::from(d - b'0');
                                }
                                _ => break,
                            }
                        }
                        // bash keeps the low byte of `\777`.
                        (value & 0xff) as u8
                    }
                    Some(b'x') => {
                        let mut value = 0u32;
                        let mut digits = 0;
                        while digits < 2 {
                            match self.peek().and_then(|d| (d as char).to_digit(16)) {
                                Some(d) => {
                                    self.bump();
                                    value = value * 16 + d;
                                    digits += 1;
                                }
                                None => break,
                            }
                        }
                        if digits == 0 {
                            return self.refuse("`\\x` without hex digits in $'...'");
                        }
                        value as u8
                    }
                    Some(_) => return self.refuse("an escape in $'...' other than C's"),
                },
                Some(b) => b,
            };
            if b == 0 {
                return self.refuse("NUL byte");
            }
            bytes.push(b);
        }
        push_text(parts, &bytes, true);
        Ok(())
    }

    fn name(&mut self) -> Vec<u8> {
        let start = self.pos;
        while self.peek().is_some_and(is_name_byte) {
            self.pos += 1;
        }
        self.s[start..self.pos].to_vec()
    }

    /// `${...}`, after the brace.
    fn braced(&mut self, parts: &mut Vec<Part>, quoted: bool) -> Result<(), Unsupported> {
        if !self.peek().is_some_and(is_name_start) {
            return self.refuse("parameter expansion other than ${NAME...}");
        }
        let name = self.name();
        let colon = self.peek() == Some(b':');
        let op = match (self.peek_at(usize::from(colon)), colon) {
            (Some(b'}'), false) => Op::Plain,
            (Some(b'-'), _) => Op::Default { colon },
            (Some(b'+'), _) => Op::Alternative { colon },
            _ => {
                return self
                    .refuse("parameter expansion other than ${NAME}, ${NAME:-w}, ${NAME:+w}")
            }
        };
        if op != Op::Plain {
            self.pos += 1 + usize::from(colon);
        }
        let mut word = Vec::new();
        loop {
            match self.peek() {
                None => return self.refuse("unterminated ${"),
                Some(b'}') => {
                    self.bump();
                    break;
                }
                Some(b'$') => {
                    self.bump();
                    self.dollar(&mut word, quoted)?;
                }
                Some(b'"' | b'\'' | b'\\') => return self.refuse("quoting inside ${...}"),
                Some(b'`') => return self.refuse("command substitution"),
                Some(0) => return self.refuse("NUL byte"),
                Some(b) => {
                    self.bump();
                    push_text(&mut word, &[b], quoted);
                }
            }
        }
        parts.push(Part::Param {
            name,
            op,
            word,
            quoted,
        });
        Ok(())
    }
}

/// Appends bytes, merging with the previous text part of the same quoting.
fn push_text(parts: &mut Vec<Part>, new: &[u8], quoted: bool) {
    if let Some(Part::Text { bytes, quoted: q }) = parts.last_mut() {
        if *q == quoted {
            bytes.extend_from_slice(new);
            return;
        }
    }
    parts.push(Part::Text {
        bytes: new.to_vec(),
        quoted,
    });
}

/// The reserved word or builtin a word spells, if it is plain unquoted text.
fn keyword(word: &Word) -> Option<&[u8]> {
    match word.as_slice() {
        [Part::Text {
            bytes,
            quoted: false,
        }] => Some(bytes.as_slice()),
        _ => None,
    }
}

/// Where an expanded word ends up, which decides how strict the expansion must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// `NAME=word` alone: no field splitting or globbing in any shell.
    Assignment,
    /// An argument of `export`, `test`...: an unquoted expansion that could split or glob,
    /// or vanish, is refused, because shells disagree or the result depends on files.
    Argument,
}

/// Where an `if` is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Branch {
    /// After `if <test>`, before `then`.
    Condition,
    Then,
    Else,
}

struct Frame {
    /// Whether the enclosing code runs at all.
    outer_active: bool,
    /// The outcome of the test.
    condition: bool,
    branch: Branch,
}

struct Shell {
    exported: Env,
    /// Variables assigned without `export` that were not in the environment: visible to
    /// later expansions, absent from the result (what `env` after `sh -c '. file'` shows).
    local: Env,
    frames: Vec<Frame>,
    /// Whether the last command that ran succeeded (`$? == 0`), for `&&` and `||`.
    status: bool,
}

impl Shell {
    fn active(&self) -> bool {
        self.frames.last().map_or(true, |f| {
            f.outer_active
                && match f.branch {
                    Branch::Condition => false,
                    Branch::Then => f.condition,
                    Branch::Else => !f.condition,
                }
        })
    }

    fn lookup(&self, name: &[u8]) -> Option<&OsStr> {
        let name = OsStr::from_bytes(name);
        self.exported.get(name).or_else(|| self.local.get(name))
    }

    /// Runs one simple command of an and-or list; `connector` is what joined it to the one
    /// before (`Sep::End`: it starts a list).
    fn run_listed(
        &mut self,
        line: usize,
        words: &[Word],
        connector: Sep,
    ) -> Result<(), Unsupported> {
        if connector == Sep::End {
            return self.run(line, words);
        }
        if words
            .first()
            .and_then(keyword)
            .is_some_and(|k| matches!(k, b"if" | b"then" | b"else" | b"elif" | b"fi"))
        {
            return Err(Unsupported {
                line,
                what: "a reserved word after `&&` or `||`",
            });
        }
        if let Some(f) = self.frames.last() {
            if f.branch == Branch::Condition {
                // `if a && b; then`: the list is the condition.
                let (active, condition) = (f.outer_active, f.condition);
                let runs = active && (connector == Sep::And) == condition;
                let result = if runs {
                    self.test(line, words)?
                } else {
                    condition
                };
                if let Some(f) = self.frames.last_mut() {
                    f.condition = result;
                }
                return Ok(());
            }
        }
        if (connector == Sep::And) == self.status {
            self.run(line, words)
        } else {
            // Skipped: `$?` stays what it was. Still run inactive, so that whatever the
            // subset refuses is refused whichever way the test went.
            let (status, frames) = (self.status, self.frames.len());
            self.frames.push(Frame {
                outer_active: false,
                condition: false,
                branch: Branch::Then,
            });
            let result = self.run(line, words);
            self.frames.truncate(frames);
            self.status = status;
            result
        }
    }

    /// Runs one simple command; reserved words may carry the next command after them.
    fn run(&mut self, line: usize, words: &[Word]) -> Result<(), Unsupported> {
        let refuse = |what| Err(Unsupported { line, what });
        let Some(first) = words.first() else {
            return Ok(());
        };
        let awaiting_then = self
            .frames
            .last()
            .is_some_and(|f| f.branch == Branch::Condition);
        match keyword(first) {
            Some(b"then") => {
                match self.frames.last_mut() {
                    Some(f) if f.branch == Branch::Condition => f.branch = Branch::Then,
                    _ => return refuse("`then` without `if`"),
                }
                self.run(line, &words[1..])
            }
            _ if awaiting_then => refuse("a condition other than one `[ test ]`"),
            Some(b"if") => {
                let outer_active = self.active();
                let condition = if outer_active {
                    self.test(line, &words[1..])?
                } else {
                    false
                };
                self.frames.push(Frame {
                    outer_active,
                    condition,
                    branch: Branch::Condition,
                });
                Ok(())
            }
            Some(b"else") => {
                match self.frames.last_mut() {
                    Some(f) if f.branch == Branch::Then => f.branch = Branch::Else,
                    _ => return refuse("`else` without `if ...; then`"),
                }
                self.run(line, &words[1..])
            }
            Some(b"fi") => {
                if words.len() > 1 {
                    return refuse("words after `fi`");
                }
                match self.frames.last() {
                    Some(f) if f.branch != Branch::Condition => {
                        self.frames.pop();
                        Ok(())
                    }
                    _ => refuse("`fi` without `if ...; then`"),
                }
            }
            Some(b"elif") => refuse("`elif`"),
            Some(b"export") => {
                self.status = true;
                self.export(line, &words[1..])
            }
            Some(b"unset") => {
                self.status = true;
                self.unset(line, &words[1..])
            }
            Some(b"[" | b"test") => {
                // A test on its own: only its status matters (`[ -e x ] && export A=1`).
                if self.active() {
                    self.status = self.test(line, words)?;
                }
                Ok(())
            }
            _ if words.iter().all(|w| assignment(w).is_some()) => {
                self.status = true;
                self.assign(line, words)
            }
            _ => refuse("a command other than export, unset, assignment or if"),
        }
    }

    /// `NAME=value...` with no command: applied left to right, each visible to the next.
    fn assign(&mut self, line: usize, words: &[Word]) -> Result<(), Unsupported> {
        for word in words {
            let Some((name, head, rest)) = assignment(word) else {
                continue;
            };
            not_ifs(line, name)?;
            let value = self.expand_value(line, head, rest, Context::Assignment)?;
            if self.active() {
                let name = OsString::from_vec(name.to_vec());
                if self.exported.get(&name).is_some() {
                    self.exported.set(name, value);
                } else {
                    self.local.set(name, value);
                }
            }
        }
        Ok(())
    }

    /// `export NAME=value... NAME...`: every argument is expanded before any is applied.
    fn export(&mut self, line: usize, args: &[Word]) -> Result<(), Unsupported> {
        let mut pending = Vec::new();
        for word in args {
            if let Some((name, head, rest)) = assignment(word) {
                not_ifs(line, name)?;
                let value = self.expand_value(line, head, rest, Context::Argument)?;
                pending.push((OsString::from_vec(name.to_vec()), Some(value)));
            } else if let Some(name) = keyword(word).filter(|n| is_name(n)) {
                not_ifs(line, name)?;
                pending.push((OsString::from_vec(name.to_vec()), None));
            } else {
                return Err(Unsupported {
                    line,
                    what: "an `export` argument other than NAME or NAME=value",
                });
            }
        }
        if self.active() {
            for (name, value) in pending {
                let local = self.local.remove(&name);
                // `export NAME` of a name that was never set exports nothing visible.
                if let Some(value) = value.or(local) {
                    self.exported.set(name, value);
                }
            }
        }
        Ok(())
    }

    fn unset(&mut self, line: usize, args: &[Word]) -> Result<(), Unsupported> {
        for word in args {
            let Some(name) = keyword(word).filter(|n| is_name(n)) else {
                return Err(Unsupported {
                    line,
                    what: "an `unset` argument other than NAME",
                });
            };
            not_ifs(line, name)?;
            if self.active() {
                self.exported.remove(OsStr::from_bytes(name));
                self.local.remove(OsStr::from_bytes(name));
            }
        }
        Ok(())
    }

    /// Evaluates `[ ... ]` or `test ...`.
    fn test(&self, line: usize, words: &[Word]) -> Result<bool, Unsupported> {
        let refuse = |what| Err(Unsupported { line, what });
        let args = match words.first().and_then(keyword) {
            Some(b"[") if words.len() > 1 && words.last().and_then(keyword) == Some(&b"]"[..]) => {
                &words[1..words.len() - 1]
            }
            Some(b"test") => &words[1..],
            _ => return refuse("a condition other than one `[ test ]`"),
        };
        let mut fields = Vec::with_capacity(args.len());
        for word in args {
            if word
                .iter()
                .all(|p| matches!(p, Part::Param { quoted: false, .. }))
            {
                // A word made only of unquoted expansions vanishes when they are empty.
                let field = self.expand(line, word, Context::Argument)?;
                if field.is_empty() {
                    return refuse("an unquoted expansion that may be empty in a test");
                }
                fields.push(field.into_vec());
            } else {
                fields.push(self.expand(line, word, Context::Argument)?.into_vec());
            }
        }
        let fields: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        match evaluate_test(&fields) {
            Some(result) => Ok(result),
            None => refuse("a test other than -n -z -e -f -d -h -L -s = != ! -a -o"),
        }
    }

    /// Expands a word to one field.
    fn expand(
        &self,
        line: usize,
        word: &[Part],
        context: Context,
    ) -> Result<OsString, Unsupported> {
        self.expand_value(line, b"", word, context)
    }

    /// Expands the value of `NAME=value`: `head` is the unquoted text after `=`.
    fn expand_value(
        &self,
        line: usize,
        head: &[u8],
        rest: &[Part],
        context: Context,
    ) -> Result<OsString, Unsupported> {
        if head.iter().any(|b| GLOB_OR_TILDE_OR_BRACE.contains(b)) {
            return Err(Unsupported {
                line,
                what: "unquoted glob, tilde or brace character",
            });
        }
        let mut out = head.to_vec();
        self.expand_into(line, rest, context, &mut out)?;
        Ok(OsString::from_vec(out))
    }

    fn expand_into(
        &self,
        line: usize,
        word: &[Part],
        context: Context,
        out: &mut Vec<u8>,
    ) -> Result<(), Unsupported> {
        let refuse = |what| Err(Unsupported { line, what });
        for part in word {
            match part {
                Part::Text { bytes, quoted } => {
                    if !quoted && bytes.iter().any(|b| GLOB_OR_TILDE_OR_BRACE.contains(b)) {
                        return refuse("unquoted glob, tilde or brace character");
                    }
                    out.extend_from_slice(bytes);
                }
                Part::Param {
                    name,
                    op,
                    word,
                    quoted,
                } => {
                    let value = self.lookup(name).map(OsStr::as_bytes);
                    let start = out.len();
                    match (*op, value) {
                        (Op::Plain, v) => out.extend_from_slice(v.unwrap_or_default()),
                        (Op::Default { colon }, Some(v)) if !(colon && v.is_empty()) => {
                            out.extend_from_slice(v)
                        }
                        (Op::Default { .. }, _) => self.expand_into(line, word, context, out)?,
                        (Op::Alternative { colon }, Some(v)) if !(colon && v.is_empty()) => {
                            self.expand_into(line, word, context, out)?
                        }
                        (Op::Alternative { .. }, _) => {}
                    }
                    if !quoted
                        && context == Context::Argument
                        && out[start..].iter().any(|b| SPLIT_OR_GLOB.contains(b))
                    {
                        return refuse("an unquoted expansion that would be split or globbed");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Refuses changes to IFS: the subset's split checks assume the default one.
fn not_ifs(line: usize, name: &[u8]) -> Result<(), Unsupported> {
    if name == b"IFS" {
        return Err(Unsupported {
            line,
            what: "a change to IFS",
        });
    }
    Ok(())
}

/// Splits a `NAME=value` word whose name part is plain unquoted text into the name, the
/// rest of that text and the parts after it.
fn assignment(word: &Word) -> Option<(&[u8], &[u8], &[Part])> {
    let Some(Part::Text {
        bytes,
        quoted: false,
    }) = word.first()
    else {
        return None;
    };
    let eq = bytes.iter().position(|&b| b == b'=')?;
    is_name(&bytes[..eq]).then(|| (&bytes[..eq], &bytes[eq + 1..], &word[1..]))
}

/// POSIX `test` by argument count; `None` for operators outside the subset.
fn evaluate_test(args: &[&[u8]]) -> Option<bool> {
    match *args {
        [] => Some(false),
        [a] => Some(!a.is_empty()),
        [b"!", a] => Some(a.is_empty()),
        [op, a] => unary(op, a),
        [a, b"=", b] => Some(a == b),
        [a, b"!=", b] => Some(a != b),
        [b"!", ref rest @ ..] if rest.len() <= 3 => evaluate_test(rest).map(|r| !r),
        _ => binary_connective(args),
    }
}

/// `a -o b` and `a -a b` (XSI; `-a` binds tighter), split at the first connective whose two
/// sides are tests of the subset. At most [`MAX_TEST_ARGS`] arguments, so the split stays
/// cheap.
fn binary_connective(args: &[&[u8]]) -> Option<bool> {
    if args.len() < 3 || args.len() > MAX_TEST_ARGS {
        return None;
    }
    for op in [&b"-o"[..], &b"-a"[..]] {
        for i in 1..args.len() - 1 {
            if args[i] != op {
                continue;
            }
            if let (Some(left), Some(right)) =
                (evaluate_test(&args[..i]), evaluate_test(&args[i + 1..]))
            {
                return Some(if op == b"-o" {
                    left || right
                } else {
                    left && right
                });
            }
        }
    }
    None
}

/// The longest `test` argument list evaluated in process.
const MAX_TEST_ARGS: usize = 9;

fn unary(op: &[u8], operand: &[u8]) -> Option<bool> {
    let path = Path::new(OsStr::from_bytes(operand));
    Some(match op {
        b"-n" => !operand.is_empty(),
        b"-z" => operand.is_empty(),
        b"-e" => path.metadata().is_ok(),
        b"-f" => path.metadata().is_ok_and(|m| m.is_file()),
        b"-d" => path.metadata().is_ok_and(|m| m.is_dir()),
        b"-h" | b"-L" => path.symlink_metadata().is_ok_and(|m| m.is_symlink()),
        b"-s" => path.metadata().is_ok_and(|m| m.len() > 0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        vars.iter()
            .map(|(n, v)| (OsString::from(n), OsString::from(v)))
            .collect()
    }

    fn run(script: &str, vars: &[(&str, &str)]) -> Env {
        match evaluate(script.as_bytes(), &env(vars)) {
            Ok(env) => env,
            Err(e) => panic!("{e}\n{script}"),
        }
    }

    fn get<'e>(env: &'e Env, name: &str) -> Option<&'e str> {
        env.get(name).and_then(OsStr::to_str)
    }

    fn refused(script: &str) -> Unsupported {
        match evaluate(script.as_bytes(), &env(&[("HOME", "/home/u")])) {
            Ok(env) => panic!("accepted {script:?}: {env:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn quoting_and_escapes() {
        let e = run(
            concat!(
                "export A=\"x \\\"q\\\" \\$HOME \\\\ \\a 'single'\"\n",
                "export B='$HOME \"d\" \\n'\n",
                "export C=plain\\ text\"$HOME\"'!'\n",
                "export D=\"multi\nline\" E=\"con\\\ntinued\"\n",
                "export F=\"$\" G=a$/b H=\"#not a comment\" I=a#b # comment\n",
            ),
            &[("HOME", "/home/u")],
        );
        assert_eq!(get(&e, "A"), Some("x \"q\" $HOME \\ \\a 'single'"));
        assert_eq!(get(&e, "B"), Some("$HOME \"d\" \\n"));
        assert_eq!(get(&e, "C"), Some("plain text/home/u!"));
        assert_eq!(get(&e, "D"), Some("multi\nline"));
        assert_eq!(get(&e, "E"), Some("continued"));
        assert_eq!(get(&e, "F"), Some("$"));
        assert_eq!(get(&e, "G"), Some("a$/b"));
        assert_eq!(get(&e, "H"), Some("#not a comment"));
        assert_eq!(get(&e, "I"), Some("a#b"));
    }

    #[test]
    fn parameter_operators() {
        let e = run(
            concat!(
                "export A=\"${SET:-d}${EMPTY:-d}${UNSET:-d}\"\n",
                "export B=\"${SET-d}${EMPTY-d}${UNSET-d}\"\n",
                "export C=\"${SET:+a}${EMPTY:+b}${UNSET:+c}\"\n",
                "export D=\"${SET+a}${EMPTY+b}${UNSET+c}\"\n",
                "export E=\"x${SET:+:$SET}\" F=\"${UNSET:-$HOME/.local}\"\n",
            ),
            &[("SET", "s"), ("EMPTY", ""), ("HOME", "/h")],
        );
        assert_eq!(get(&e, "A"), Some("sdd"));
        assert_eq!(get(&e, "B"), Some("sd"));
        assert_eq!(get(&e, "C"), Some("a"));
        assert_eq!(get(&e, "D"), Some("ab"));
        assert_eq!(get(&e, "E"), Some("x:s"));
        assert_eq!(get(&e, "F"), Some("/h/.local"));
    }

    #[test]
    fn export_semantics() {
        let e = run(
            concat!(
                "LOCAL=l KEPT=new\n",
                "export USES_LOCAL=\"$LOCAL\"\n",
                "LATER=1; export LATER\n",
                "export NEVER_SET\n",
                "export X=1 Y=\"$X\"\n",
                "A=1 B=$A\n",
                "unset GONE\n",
            ),
            &[("KEPT", "old"), ("X", "0"), ("GONE", "g"), ("B", "")],
        );
        assert_eq!(get(&e, "LOCAL"), None, "not exported");
        assert_eq!(get(&e, "KEPT"), Some("new"), "already exported");
        assert_eq!(get(&e, "USES_LOCAL"), Some("l"));
        assert_eq!(get(&e, "LATER"), Some("1"));
        assert_eq!(get(&e, "NEVER_SET"), None);
        assert_eq!(
            get(&e, "Y"),
            Some("0"),
            "export expands all arguments first"
        );
        assert_eq!(get(&e, "B"), Some("1"), "plain assignments are sequential");
        assert_eq!(get(&e, "GONE"), None);
        let names: Vec<_> = e.iter().map(|(n, _)| n.to_str().unwrap_or("?")).collect();
        assert_eq!(names, ["KEPT", "X", "B", "USES_LOCAL", "LATER", "Y"]);
    }

    #[test]
    fn conditions() {
        let dir = std::env::temp_dir();
        let dir = dir.to_str().unwrap_or("/tmp");
        let e = run(
            &format!(
                concat!(
                    "if [ -d \"{dir}\" ]; then export A=dir; else export A=nodir; fi\n",
                    "if [ -e \"{dir}/does/not/exist\" ]; then\n  export B=yes\nelse\n  export B=no\nfi\n",
                    "if test -n \"$HOME\"\nthen export C=1\n",
                    "  if [ ! -z \"$HOME\" ]; then export D=1; fi\n",
                    "  if [ \"$HOME\" != /h ]; then export E=1; fi\n",
                    "fi\n",
                    "if [ -e /nonexistent ]; then\n  if [ -e / ]; then export F=1; fi\n  export G=1\nfi\n",
                    "if [ \"\" ]; then export H=1; fi; if [ x = x ]; then export I=1; fi\n",
                ),
                dir = dir
            ),
            &[("HOME", "/h")],
        );
        assert_eq!(get(&e, "A"), Some("dir"));
        assert_eq!(get(&e, "B"), Some("no"));
        assert_eq!(get(&e, "C"), Some("1"));
        assert_eq!(get(&e, "D"), Some("1"));
        assert_eq!(get(&e, "E"), None);
        assert_eq!(get(&e, "F"), None, "inner `if` of a skipped branch");
        assert_eq!(get(&e, "G"), None);
        assert_eq!(get(&e, "H"), None);
        assert_eq!(get(&e, "I"), Some("1"));
    }

    #[test]
    fn non_utf8_is_byte_exact() {
        let start: Env = [(
            OsString::from("HOME"),
            OsString::from_vec(b"/h\xff".to_vec()),
        )]
        .into_iter()
        .collect();
        let e = evaluate(b"export A=\"$HOME/\xfe\"\nexport \xc3\xa9=1\n", &start);
        assert!(e.is_err(), "non-ASCII names are not shell names");
        let e = evaluate(b"export A=\"$HOME/\xfe\"\n", &start).map_err(|e| e.to_string());
        assert_eq!(
            e.as_ref().map(|e| e.get("A")),
            Ok(Some(OsStr::from_bytes(b"/h\xff/\xfe")))
        );
    }

    #[test]
    fn and_or_lists_and_connectives() {
        let vars = [("SET", "x"), ("EMPTY", "")];
        let got = |script: &str| {
            let env = run(script, &vars);
            ["A", "B", "C", "D"].map(|n| get(&env, n).map(str::to_owned))
        };
        let one = Some("1".to_owned());
        assert_eq!(
            got(
                "[ -n \"$SET\" ] && export A=1; [ -n \"$EMPTY\" ] && export B=1\n\
                 [ -n \"$EMPTY\" ] || export C=1; [ -n \"$SET\" ] || export D=1"
            ),
            [one.clone(), None, one.clone(), None]
        );
        assert_eq!(
            got(
                "if [ -n \"$SET\" ] && [ -z \"$EMPTY\" ]; then export A=1; fi\n\
                 if [ -z \"$SET\" ] &&\n  [ -z \"$EMPTY\" ]; then export B=1; fi\n\
                 if [ -z \"$SET\" ] || [ -z \"$EMPTY\" ]; then export C=1; fi\n\
                 if [ -z \"$SET\" -a -n \"$SET\" -o -z \"$EMPTY\" ]; then export D=1; fi"
            ),
            [one.clone(), None, one.clone(), one.clone()]
        );
        // A skipped command keeps `$?`: `false && x || y` runs y.
        assert_eq!(
            got("[ -z \"$SET\" ] && export A=1 || export B=1"),
            [None, one.clone(), None, None]
        );
        assert_eq!(
            got("export A=$'tab\\there\\n\\x41\\101\\'q'"),
            [Some("tab\there\nAA'q".to_owned()), None, None, None]
        );
    }

    #[test]
    fn refusals_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("export A=\"$(id -u)\"", 1, "command substitution"),
            ("\n\nexport A=`id`", 3, "command substitution"),
            ("export A=\"`id`\"", 1, "command substitution"),
            ("export A=1 &", 1, "pipeline, list or background job"),
            (
                "if [ -e / ]; then export A=1; fi && export B=1",
                1,
                "`&&` or `||` after `fi`",
            ),
            (
                "export A=1 &&",
                1,
                "`&&` or `||` without a command after it",
            ),
            (
                "[ -e / ] && if [ -e / ]; then :; fi",
                1,
                "a reserved word after `&&` or `||`",
            ),
            (
                "export A=$'\\u00e9'",
                1,
                "an escape in $'...' other than C's",
            ),
            ("export A=1 | cat", 1, "pipeline, list or background job"),
            ("export A=1 >/dev/null", 1, "redirection"),
            ("f() { :; }", 1, "subshell or function definition"),
            (
                ". /etc/profile",
                1,
                "a command other than export, unset, assignment or if",
            ),
            (
                "source /etc/profile",
                1,
                "a command other than export, unset, assignment or if",
            ),
            (
                "for i in a b; do export A=$i; done",
                1,
                "a command other than export, unset, assignment or if",
            ),
            ("case x in x) ;; esac", 1, "subshell or function definition"),
            (
                "export A=~/bin",
                1,
                "unquoted glob, tilde or brace character",
            ),
            ("export A=*", 1, "unquoted glob, tilde or brace character"),
            ("export A=\"$1\"", 1, "special parameter"),
            (
                "export A=\"${#HOME}\"",
                1,
                "parameter expansion other than ${NAME...}",
            ),
            (
                "export A=\"${HOME%/}\"",
                1,
                "parameter expansion other than ${NAME}, ${NAME:-w}, ${NAME:+w}",
            ),
            ("export A=\"${HOME:-\"x\"}\"", 1, "quoting inside ${...}"),
            ("export A=$\"x\"", 1, "`$\"...\"` quoting"),
            ("export A=\"x", 1, "unterminated double quote"),
            ("export A='x", 1, "unterminated single quote"),
            ("if [ -e / ]; then\nexport A=1\n", 3, "`if` without `fi`"),
            ("then export A=1", 1, "`then` without `if`"),
            ("fi", 1, "`fi` without `if ...; then`"),
            (
                "if [ -e / ]; then :; elif true; then :; fi",
                1,
                "a command other than export, unset, assignment or if",
            ),
            (
                "if [ -r / ]; then export A=1; fi",
                1,
                "a test other than -n -z -e -f -d -h -L -s = != ! -a -o",
            ),
            (
                "if [ -e / -a \\( -d / \\) ]; then export A=1; fi",
                1,
                "a test other than -n -z -e -f -d -h -L -s = != ! -a -o",
            ),
            (
                "if [ -n $HOME ]; then export A=1; fi",
                1,
                "an unquoted expansion that may be empty in a test",
            ),
            (
                "if [ -e / ]; export A=1; then :; fi",
                1,
                "a condition other than one `[ test ]`",
            ),
            (
                "if true; then :; fi",
                1,
                "a condition other than one `[ test ]`",
            ),
            (
                "export A=$SPACED",
                1,
                "an unquoted expansion that would be split or globbed",
            ),
            (
                "export -p",
                1,
                "an `export` argument other than NAME or NAME=value",
            ),
            ("unset -f x", 1, "an `unset` argument other than NAME"),
            (
                "set -e",
                1,
                "a command other than export, unset, assignment or if",
            ),
            ("A=1 ;; B=2", 1, "`;` without a command before it"),
            ("export A=\"\0\"", 1, "NUL byte"),
            ("IFS=:", 1, "a change to IFS"),
            ("export IFS", 1, "a change to IFS"),
            ("unset IFS", 1, "a change to IFS"),
        ];
        for &(script, line, what) in cases {
            let got = match evaluate(script.as_bytes(), &env(&[("SPACED", "a b")])) {
                Ok(env) => panic!("accepted {script:?}: {env:?}"),
                Err(e) => e,
            };
            assert_eq!(got, Unsupported { line, what }, "{script:?}");
        }
        assert_eq!(
            refused("\nexport A=\"$(x)\"").to_string(),
            "unsupported construct at line 2: command substitution"
        );
    }

    #[test]
    fn plain_assignment_tolerates_unquoted_spaces() {
        // No shell splits the value of a plain assignment.
        let e = run("A=$SPACED; export A", &[("SPACED", "a b")]);
        assert_eq!(get(&e, "A"), Some("a b"));
    }
}
