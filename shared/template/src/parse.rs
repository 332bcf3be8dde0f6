//! Lexer and parser for Go's text/template syntax (the subset of Go 1.21 text/template
//! that templates use: all actions, pipelines, variables, chains, literals, comments and
//! whitespace trimming). Errors read like Go's (`template: NAME:LINE: MSG`).

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    Left,
    Right,
    Space,
    Ident(String),
    Field(String),
    Var(String),
    Dot,
    Str(String),
    Char(i64),
    Number(String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Keyword(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Tokenizes a whole template text. Errors carry the byte position.
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, (usize, String)> {
    let b = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    while i <= b.len() {
        // Text up to the next "{{".
        let start = i;
        let next = text[i..].find("{{").map(|k| i + k);
        let end = next.unwrap_or(b.len());
        let mut t = &text[start..end];
        if trim_next {
            t = t.trim_start_matches([' ', '\t', '\r', '\n']);
            trim_next = false;
        }
        let Some(open) = next else {
            if !t.is_empty() {
                toks.push(Token {
                    tok: Tok::Text(t.to_string()),
                    pos: end - t.len(),
                });
            }
            break;
        };
        // Left trim marker "{{- ".
        let trim_left =
            b.get(open + 2) == Some(&b'-') && b.get(open + 3).is_some_and(|&c| is_space(c));
        if trim_left {
            t = t.trim_end_matches([' ', '\t', '\r', '\n']);
        }
        if !t.is_empty() {
            toks.push(Token {
                tok: Tok::Text(t.to_string()),
                pos: start,
            });
        }
        i = open + 2;
        if trim_left {
            i += 2;
        }
        // Comments.
        let mut j = i;
        if text[j..].starts_with("/*") {
            let close = text[j + 2..]
                .find("*/")
                .map(|k| j + 2 + k)
                .ok_or((open, "unclosed comment".to_string()))?;
            j = close + 2;
            if text[j..].starts_with(" -}}")
                || text[j..].starts_with("\t-}}")
                || text[j..].starts_with("\n-}}")
                || text[j..].starts_with("\r-}}")
            {
                trim_next = true;
                i = j + 4;
            } else if text[j..].starts_with("}}") {
                i = j + 2;
            } else {
                return Err((open, "comment ends before closing delimiter".to_string()));
            }
            continue;
        }
        toks.push(Token {
            tok: Tok::Left,
            pos: open,
        });
        // Inside an action.
        let mut paren = 0i32;
        loop {
            let rest = &text[i..];
            if rest.starts_with("}}") {
                if paren > 0 {
                    return Err((i, "unclosed left paren".into()));
                }
                toks.push(Token {
                    tok: Tok::Right,
                    pos: i,
                });
                i += 2;
                break;
            }
            let Some(c) = rest.chars().next() else {
                return Err((i, "unclosed action".into()));
            };
            if is_space(c as u8) && c.is_ascii() {
                // Right trim marker " -}}".
                let n = rest.bytes().take_while(|&x| is_space(x)).count();
                if rest[n..].starts_with("-}}") {
                    if paren > 0 {
                        return Err((i, "unclosed left paren".into()));
                    }
                    toks.push(Token {
                        tok: Tok::Right,
                        pos: i + n + 1,
                    });
                    i += n + 3;
                    trim_next = true;
                    break;
                }
                if rest[..n].contains('\n') {
                    return Err((i, "unclosed action".into()));
                }
                toks.push(Token {
                    tok: Tok::Space,
                    pos: i,
                });
                i += n;
                continue;
            }
            let pos = i;
            match c {
                '|' => {
                    toks.push(Token {
                        tok: Tok::Pipe,
                        pos,
                    });
                    i += 1;
                }
                '(' => {
                    paren += 1;
                    toks.push(Token {
                        tok: Tok::LParen,
                        pos,
                    });
                    i += 1;
                }
                ')' => {
                    paren -= 1;
                    if paren < 0 {
                        return Err((pos, "unexpected right paren U+0029 ')'".into()));
                    }
                    toks.push(Token {
                        tok: Tok::RParen,
                        pos,
                    });
                    i += 1;
                }
                ',' => {
                    toks.push(Token {
                        tok: Tok::Comma,
                        pos,
                    });
                    i += 1;
                }
                ':' => {
                    if rest.starts_with(":=") {
                        toks.push(Token {
                            tok: Tok::Declare,
                            pos,
                        });
                        i += 2;
                    } else {
                        return Err((pos, "expected :=".into()));
                    }
                }
                '=' => {
                    toks.push(Token {
                        tok: Tok::Assign,
                        pos,
                    });
                    i += 1;
                }
                '"' => {
                    let (s, n) = lex_quote(rest).map_err(|e| (pos, e))?;
                    toks.push(Token {
                        tok: Tok::Str(s),
                        pos,
                    });
                    i += n;
                }
                '`' => {
                    let close = rest[1..]
                        .find('`')
                        .ok_or((pos, "unterminated raw quoted string".to_string()))?;
                    toks.push(Token {
                        tok: Tok::Str(rest[1..1 + close].to_string()),
                        pos,
                    });
                    i += close + 2;
                }
                '\'' => {
                    let (ch, n) = lex_char(rest).map_err(|e| (pos, e))?;
                    toks.push(Token {
                        tok: Tok::Char(ch),
                        pos,
                    });
                    i += n;
                }
                '$' => {
                    let n = 1 + rest[1..]
                        .chars()
                        .take_while(|&c| is_alnum(c))
                        .map(char::len_utf8)
                        .sum::<usize>();
                    toks.push(Token {
                        tok: Tok::Var(rest[..n].to_string()),
                        pos,
                    });
                    i += n;
                }
                '.' => {
                    let second = rest[1..].chars().next();
                    if second.is_some_and(|c| c.is_ascii_digit()) {
                        let n = lex_number(rest);
                        toks.push(Token {
                            tok: Tok::Number(rest[..n].to_string()),
                            pos,
                        });
                        i += n;
                    } else if second.is_some_and(is_alnum) {
                        let n = 1 + rest[1..]
                            .chars()
                            .take_while(|&c| is_alnum(c))
                            .map(char::len_utf8)
                            .sum::<usize>();
                        toks.push(Token {
                            tok: Tok::Field(rest[1..n].to_string()),
                            pos,
                        });
                        i += n;
                    } else {
                        toks.push(Token { tok: Tok::Dot, pos });
                        i += 1;
                    }
                }
                c if c.is_ascii_digit()
                    || ((c == '+' || c == '-')
                        && rest[1..].starts_with(|d: char| d.is_ascii_digit() || d == '.')) =>
                {
                    let n = lex_number(rest);
                    if rest[n..].starts_with(is_alnum) {
                        return Err((pos, format!("bad number syntax: {:?}", &rest[..n + 1])));
                    }
                    toks.push(Token {
                        tok: Tok::Number(rest[..n].to_string()),
                        pos,
                    });
                    i += n;
                }
                c if is_alnum(c) => {
                    let n = rest
                        .chars()
                        .take_while(|&c| is_alnum(c))
                        .map(char::len_utf8)
                        .sum::<usize>();
                    let word = &rest[..n];
                    let tok = if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                        Tok::Keyword(k)
                    } else {
                        match word {
                            "true" => Tok::Bool(true),
                            "false" => Tok::Bool(false),
                            "nil" => Tok::Nil,
                            _ => Tok::Ident(word.to_string()),
                        }
                    };
                    toks.push(Token { tok, pos });
                    i += n;
                }
                other => {
                    return Err((
                        pos,
                        format!(
                            "unrecognized character in action: U+{:04X} '{}'",
                            other as u32, other
                        ),
                    ));
                }
            }
        }
    }
    toks.push(Token {
        tok: Tok::Eof,
        pos: b.len(),
    });
    Ok(toks)
}

fn lex_number(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let hex = s[i..].starts_with("0x") || s[i..].starts_with("0X");
    if hex {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

fn unescape(
    chars: &mut std::iter::Peekable<std::str::CharIndices>,
    quote: char,
) -> Result<char, String> {
    let (_, c) = chars.next().ok_or("unterminated quoted string")?;
    Ok(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'v' => '\x0b',
        '\\' => '\\',
        '\'' if quote == '\'' => '\'',
        '"' if quote == '"' => '"',
        'x' | 'u' | 'U' => {
            let n = match c {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let mut v = 0u32;
            for _ in 0..n {
                let (_, h) = chars.next().ok_or("unterminated quoted string")?;
                v = v * 16
                    + h.to_digit(16)
                        .ok_or_else(|| format!("invalid syntax in escape \\{c}"))?;
            }
            char::from_u32(v).ok_or("invalid unicode escape")?
        }
        '0'..='7' => {
            let mut v = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                let (_, h) = chars.next().ok_or("unterminated quoted string")?;
                v = v * 8 + h.to_digit(8).ok_or("invalid syntax in octal escape")?;
            }
            char::from_u32(v).ok_or("invalid octal escape")?
        }
        other => return Err(format!("invalid syntax: unknown escape sequence \\{other}")),
    })
}

fn lex_quote(s: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    chars.next();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => out.push(unescape(&mut chars, '"')?),
            '\n' => return Err("unterminated quoted string".into()),
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

fn lex_char(s: &str) -> Result<(i64, usize), String> {
    let mut chars = s.char_indices().peekable();
    chars.next();
    let c = match chars.next() {
        Some((_, '\\')) => unescape(&mut chars, '\'')?,
        Some((_, c)) if c != '\'' && c != '\n' => c,
        _ => return Err("unterminated character constant".into()),
    };
    match chars.next() {
        Some((i, '\'')) => Ok((c as i64, i + 1)),
        _ => Err("unterminated character constant".into()),
    }
}

// ---------------------------------------------------------------------------------------
// AST

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    #[allow(dead_code)]
    pub pos: usize,
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    #[allow(dead_code)]
    pub pos: usize,
    pub args: Vec<Operand>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, String, Num),
    Str(usize, String),
    Ident(usize, String),
    Field(usize, Vec<String>),
    Var(usize, String, Vec<String>),
    Chain(usize, Box<Operand>, Vec<String>),
    Pipe(usize, Box<Pipe>),
}

impl Operand {
    pub fn pos(&self) -> usize {
        match self {
            Operand::Dot(p)
            | Operand::Nil(p)
            | Operand::Bool(p, _)
            | Operand::Number(p, ..)
            | Operand::Str(p, _)
            | Operand::Ident(p, _)
            | Operand::Field(p, _)
            | Operand::Var(p, ..)
            | Operand::Chain(p, ..)
            | Operand::Pipe(p, _) => *p,
        }
    }
}

impl std::fmt::Display for Operand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operand::Dot(_) => f.write_str("."),
            Operand::Nil(_) => f.write_str("nil"),
            Operand::Bool(_, b) => write!(f, "{b}"),
            Operand::Number(_, t, _) => f.write_str(t),
            Operand::Str(_, s) => f.write_str(&crate::gofmt::go_quote(s)),
            Operand::Ident(_, n) => f.write_str(n),
            Operand::Field(_, names) => {
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Operand::Var(_, name, fields) => {
                f.write_str(name)?;
                for n in fields {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Operand::Chain(_, node, fields) => {
                write!(f, "{node}")?;
                for n in fields {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Operand::Pipe(_, p) => write!(f, "({p})"),
        }
    }
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Parser

/// The result of parsing one text: its main body and the templates it defines.
pub(crate) struct Parsed {
    pub root: Vec<Node>,
    pub defines: Vec<(String, Vec<Node>)>,
}

/// Deepest nesting of blocks and parentheses accepted (protects the stack).
const MAX_NESTING: usize = 200;

pub(crate) struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    text: &'a str,
    funcs: &'a dyn Fn(&str) -> bool,
    vars: Vec<String>,
    defines: Vec<(String, Vec<Node>)>,
    range_depth: usize,
    depth: usize,
}

/// Go's `template: NAME:LINE: MSG` parse error.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    1 + text[..pos.min(text.len())].matches('\n').count()
}

enum End {
    End,
    Else(usize),
}

impl<'a> Parser<'a> {
    pub fn parse(
        text: &'a str,
        name: &'a str,
        funcs: &'a dyn Fn(&str) -> bool,
    ) -> Result<Parsed, String> {
        let toks = lex(text)
            .map_err(|(pos, msg)| format!("template: {name}:{}: {msg}", line_of(text, pos)))?;
        let mut p = Parser {
            toks,
            i: 0,
            text,
            funcs,
            vars: vec!["$".into()],
            defines: Vec::new(),
            range_depth: 0,
            depth: 0,
        };
        let root = p
            .top()
            .map_err(|(pos, msg)| format!("template: {name}:{}: {msg}", line_of(text, pos)))?;
        Ok(Parsed {
            root,
            defines: p.defines,
        })
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        self.i += 1;
        t
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let save = self.i;
        let t = self.next_non_space();
        self.i = save;
        t
    }

    fn top(&mut self) -> Result<Vec<Node>, (usize, String)> {
        let mut list = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Eof => return Ok(list),
                Tok::Left => {
                    let save = self.i;
                    self.next();
                    let k = self.peek_non_space();
                    if k.tok == Tok::Keyword("define") {
                        self.next_non_space();
                        self.parse_define(t.pos)?;
                        continue;
                    }
                    self.i = save;
                    match self.text_or_action()? {
                        Ok(n) => list.push(n),
                        Err((pos, _)) => {
                            return Err((pos, format!("unexpected {}", self.describe_end(pos))))
                        }
                    }
                }
                _ => match self.text_or_action()? {
                    Ok(n) => list.push(n),
                    Err((pos, _)) => {
                        return Err((pos, format!("unexpected {}", self.describe_end(pos))))
                    }
                },
            }
        }
    }

    fn describe_end(&self, pos: usize) -> String {
        if self.text[pos..]
            .trim_start_matches(['{', '-', ' '])
            .starts_with("else")
        {
            "{{else}}".into()
        } else {
            "{{end}}".into()
        }
    }

    fn parse_define(&mut self, pos: usize) -> Result<(), (usize, String)> {
        let t = self.next_non_space();
        let name = match t.tok {
            Tok::Str(s) => s,
            _ => {
                return Err((
                    t.pos,
                    "name of template in define clause must be a string".into(),
                ))
            }
        };
        let r = self.next_non_space();
        if r.tok != Tok::Right {
            return Err((r.pos, "unexpected token in define clause".into()));
        }
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        if let End::Else(p) = end {
            return Err((p, "unexpected {{else}}".into()));
        }
        let _ = pos;
        self.defines.push((name, list));
        Ok(())
    }

    /// Parses until `{{end}}` or `{{else}}` (consumed); returns which.
    fn item_list(&mut self) -> Result<(Vec<Node>, End), (usize, String)> {
        let mut list = Vec::new();
        loop {
            if self.peek().tok == Tok::Eof {
                return Err((self.peek().pos, "unexpected EOF".into()));
            }
            match self.text_or_action()? {
                Ok(n) => list.push(n),
                Err((pos, is_else)) => {
                    return Ok((list, if is_else { End::Else(pos) } else { End::End }))
                }
            }
        }
    }

    /// One node; `Err((pos, is_else))` when an `{{end}}`/`{{else}}` was consumed instead.
    #[allow(clippy::type_complexity)]
    fn text_or_action(&mut self) -> Result<Result<Node, (usize, bool)>, (usize, String)> {
        let t = self.next();
        match t.tok {
            Tok::Text(s) => Ok(Ok(Node::Text(s))),
            Tok::Left => self.action(t.pos),
            Tok::Eof => Err((t.pos, "unexpected EOF".into())),
            other => Err((t.pos, format!("unexpected {other:?}"))),
        }
    }

    fn expect_right(&mut self, context: &str) -> Result<(), (usize, String)> {
        let t = self.next_non_space();
        if t.tok != Tok::Right {
            return Err((
                t.pos,
                format!("unexpected {} in {context}", self.tok_desc(&t)),
            ));
        }
        Ok(())
    }

    /// Go's `item.String()`: keywords as `<if>`, EOF, others quoted.
    fn tok_desc(&self, t: &Token) -> String {
        match &t.tok {
            Tok::Eof => "EOF".into(),
            Tok::Keyword(k) => format!("<{k}>"),
            _ => {
                let end = self
                    .toks
                    .iter()
                    .find(|x| x.pos > t.pos)
                    .map(|x| x.pos)
                    .unwrap_or(self.text.len());
                let raw = self.text[t.pos..end].trim_end();
                let raw = if t.tok == Tok::Right { "}}" } else { raw };
                if raw.chars().count() > 10 {
                    let short: String = raw.chars().take(10).collect();
                    format!("{}...", crate::gofmt::go_quote(&short))
                } else {
                    crate::gofmt::go_quote(raw)
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn action(&mut self, pos: usize) -> Result<Result<Node, (usize, bool)>, (usize, String)> {
        let t = self.peek_non_space();
        match t.tok {
            Tok::Keyword("end") => {
                self.next_non_space();
                self.expect_right("end")?;
                Ok(Err((pos, false)))
            }
            Tok::Keyword("else") => {
                self.next_non_space();
                // "else if"/"else with" keep the "{{" open for the chained branch.
                let k = self.peek_non_space();
                if k.tok == Tok::Keyword("if") || k.tok == Tok::Keyword("with") {
                    return Ok(Err((pos, true)));
                }
                self.expect_right("else")?;
                Ok(Err((pos, true)))
            }
            Tok::Keyword("if") => {
                self.next_non_space();
                self.branch(t.pos, "if").map(|b| Ok(Node::If(Box::new(b))))
            }
            Tok::Keyword("with") => {
                self.next_non_space();
                self.branch(t.pos, "with")
                    .map(|b| Ok(Node::With(Box::new(b))))
            }
            Tok::Keyword("range") => {
                self.next_non_space();
                self.range_depth += 1;
                let r = self.branch(t.pos, "range");
                self.range_depth -= 1;
                r.map(|b| Ok(Node::Range(Box::new(b))))
            }
            Tok::Keyword("break") | Tok::Keyword("continue") => {
                self.next_non_space();
                let is_break = t.tok == Tok::Keyword("break");
                let word = if is_break { "break" } else { "continue" };
                if self.range_depth == 0 {
                    return Err((t.pos, format!("{{{{{word}}}}} outside {{{{range}}}}")));
                }
                self.expect_right(word)?;
                Ok(Ok(if is_break {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Tok::Keyword("template") | Tok::Keyword("block") => {
                self.next_non_space();
                let is_block = t.tok == Tok::Keyword("block");
                let ctx = if is_block {
                    "block clause"
                } else {
                    "template clause"
                };
                let n = self.next_non_space();
                let name = match n.tok {
                    Tok::Str(s) => s,
                    _ => return Err((n.pos, format!("unexpected {} in {ctx}", self.tok_desc(&n)))),
                };
                let pipe = if self.peek_non_space().tok != Tok::Right {
                    Some(self.pipeline(ctx, false)?)
                } else {
                    None
                };
                self.expect_right(ctx)?;
                if is_block {
                    let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
                    let (list, end) = self.item_list()?;
                    self.vars = saved;
                    if let End::Else(p) = end {
                        return Err((p, "unexpected {{else}}".into()));
                    }
                    self.defines.push((name.clone(), list));
                }
                Ok(Ok(Node::Template {
                    pos: t.pos,
                    name,
                    pipe,
                }))
            }
            Tok::Keyword("define") => Err((t.pos, "unexpected <define> in command".into())),
            _ => {
                let pipe = self.pipeline("command", true)?;
                self.expect_right("command")?;
                Ok(Ok(Node::Action(pipe)))
            }
        }
    }

    fn branch(&mut self, pos: usize, context: &str) -> Result<Branch, (usize, String)> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err((
                pos,
                format!("{context} nested too deeply (over {MAX_NESTING} levels)"),
            ));
        }
        let r = self.branch_inner(pos, context);
        self.depth -= 1;
        r
    }

    fn branch_inner(&mut self, pos: usize, context: &str) -> Result<Branch, (usize, String)> {
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, context == "range")?;
        self.expect_right(context)?;
        let (list, end) = self.item_list()?;
        let else_list = match end {
            End::End => None,
            End::Else(_) => {
                let k = self.peek_non_space();
                if k.tok == Tok::Keyword("if") || k.tok == Tok::Keyword("with") {
                    // "{{else if ...}}" is "{{else}}{{if ...}}...{{end}}{{end}}" sharing the end.
                    self.next_non_space();
                    let kw = if k.tok == Tok::Keyword("if") {
                        "if"
                    } else {
                        "with"
                    };
                    let inner = self.branch(k.pos, kw)?;
                    Some(vec![if kw == "if" {
                        Node::If(Box::new(inner))
                    } else {
                        Node::With(Box::new(inner))
                    }])
                } else {
                    let (l, end2) = self.item_list()?;
                    if let End::Else(p) = end2 {
                        return Err((p, "expected end; found {{else}}".into()));
                    }
                    Some(l)
                }
            }
        };
        self.vars.truncate(nvars);
        Ok(Branch {
            pos,
            pipe,
            list,
            else_list,
        })
    }

    fn pipeline(&mut self, context: &str, allow_decl: bool) -> Result<Pipe, (usize, String)> {
        let start = self.peek_non_space();
        let mut decl = Vec::new();
        let mut assign = false;
        // Declarations: "$x :=", "$x =", "$i, $e :=".
        if let Tok::Var(_) = start.tok {
            let save = self.i;
            let mut names = Vec::new();
            loop {
                let v = self.next_non_space();
                let Tok::Var(name) = v.tok else { break };
                names.push(name);
                let op = self.next_non_space();
                match op.tok {
                    Tok::Declare | Tok::Assign => {
                        assign = op.tok == Tok::Assign;
                        decl = names.clone();
                        break;
                    }
                    Tok::Comma if context == "range" && names.len() < 2 => continue,
                    Tok::Comma => {
                        return Err((op.pos, format!("too many declarations in {context}")))
                    }
                    _ => break,
                }
            }
            if decl.is_empty() {
                self.i = save;
            } else {
                let _ = allow_decl;
                for d in &decl {
                    if assign {
                        if !self.vars.contains(d) {
                            return Err((start.pos, format!("undefined variable \"{d}\"")));
                        }
                    } else {
                        self.vars.push(d.clone());
                    }
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.peek_non_space();
            match t.tok {
                Tok::Right | Tok::RParen => {
                    if cmds.is_empty() {
                        return Err((t.pos, format!("missing value for {context}")));
                    }
                    break;
                }
                _ => {
                    cmds.push(self.command()?);
                }
            }
            let t = self.peek_non_space();
            if t.tok == Tok::Pipe {
                self.next_non_space();
                continue;
            }
        }
        // Only the first command may be a non-function; later ones receive the pipe value.
        for c in cmds.iter().skip(1) {
            if let Some(a) = c.args.first() {
                if matches!(
                    a,
                    Operand::Bool(..)
                        | Operand::Dot(_)
                        | Operand::Nil(_)
                        | Operand::Number(..)
                        | Operand::Str(..)
                ) {
                    return Err((
                        a.pos(),
                        format!("non executable command in pipeline stage {}", 2),
                    ));
                }
            }
        }
        Ok(Pipe {
            pos: start.pos,
            decl,
            assign,
            cmds,
        })
    }

    fn command(&mut self) -> Result<Cmd, (usize, String)> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Space => {
                    self.next();
                    continue;
                }
                Tok::Right | Tok::RParen | Tok::Pipe => break,
                Tok::Eof => return Err((t.pos, "unexpected EOF".into())),
                _ => {}
            }
            let op = self.operand()?;
            // Operands must be separated by spaces.
            let after = self.peek().tok.clone();
            args.push(op);
            match after {
                Tok::Space | Tok::Right | Tok::RParen | Tok::Pipe => {}
                _ => {
                    let t = self.peek().clone();
                    return Err((
                        t.pos,
                        format!("unexpected {} in operand", self.tok_desc(&t)),
                    ));
                }
            }
        }
        if args.is_empty() {
            return Err((pos, "empty command".into()));
        }
        Ok(Cmd { pos, args })
    }

    fn operand(&mut self) -> Result<Operand, (usize, String)> {
        let t = self.next();
        let pos = t.pos;
        let base = match t.tok {
            Tok::Dot => Operand::Dot(pos),
            Tok::Nil => Operand::Nil(pos),
            Tok::Bool(b) => Operand::Bool(pos, b),
            Tok::Str(s) => Operand::Str(pos, s),
            Tok::Char(c) => Operand::Number(
                pos,
                self.text[pos..].chars().take_while(|&c| c != ' ').collect(),
                Num::Int(c),
            ),
            Tok::Number(text) => {
                let num =
                    parse_number(&text).ok_or((pos, format!("illegal number syntax: {text:?}")))?;
                Operand::Number(pos, text, num)
            }
            Tok::Ident(name) => {
                if !(self.funcs)(&name) {
                    return Err((pos, format!("function {name:?} not defined")));
                }
                Operand::Ident(pos, name)
            }
            Tok::Field(name) => {
                // Go positions a chained field (`.A.B`) at its second element.
                let mut names = vec![name];
                let mut gpos = pos;
                while let Tok::Field(n) = &self.peek().tok {
                    if names.len() == 1 {
                        gpos = self.peek().pos;
                    }
                    names.push(n.clone());
                    self.next();
                }
                return Ok(Operand::Field(gpos, names));
            }
            Tok::Var(name) => {
                if !self.vars.contains(&name) {
                    return Err((pos, format!("undefined variable {name:?}")));
                }
                // ... and `$x.A` at its first field.
                let mut fields = Vec::new();
                let mut gpos = pos;
                while let Tok::Field(n) = &self.peek().tok {
                    if fields.is_empty() {
                        gpos = self.peek().pos;
                    }
                    fields.push(n.clone());
                    self.next();
                }
                return Ok(Operand::Var(gpos, name, fields));
            }
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err((
                        pos,
                        format!("parentheses nested too deeply (over {MAX_NESTING} levels)"),
                    ));
                }
                let p = self.pipeline("parenthesized pipeline", false);
                self.depth -= 1;
                let p = p?;
                let r = self.next_non_space();
                if r.tok != Tok::RParen {
                    return Err((r.pos, "unclosed left paren".into()));
                }
                Operand::Pipe(pos, Box::new(p))
            }
            Tok::Keyword(k) => return Err((pos, format!("unexpected <{k}> in operand"))),
            _ => return Err((pos, format!("unexpected {} in operand", self.tok_desc(&t)))),
        };
        let mut fields = Vec::new();
        let chain_pos = self.peek().pos;
        while let Tok::Field(n) = &self.peek().tok {
            fields.push(n.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(base);
        }
        match base {
            Operand::Dot(_) => Err((pos, "unexpected . after term \".\"".into())),
            Operand::Nil(_) | Operand::Bool(..) | Operand::Number(..) | Operand::Str(..) => Err((
                pos,
                format!("unexpected . after term {:?}", base.to_string()),
            )),
            base => Ok(Operand::Chain(chain_pos, Box::new(base), fields)),
        }
    }
}

fn parse_number(text: &str) -> Option<Num> {
    let clean = text.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        let v = i64::from_str_radix(hex, 16).ok()?;
        return Some(Num::Int(if neg { -v } else { v }));
    }
    if !body.contains(['.', 'e', 'E']) {
        if let Ok(v) = body.parse::<i64>() {
            return Some(Num::Int(if neg { -v } else { v }));
        }
    }
    let v: f64 = body.parse().ok()?;
    Some(Num::Float(if neg { -v } else { v }))
}
