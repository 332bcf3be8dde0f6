//! The executor: walks the parsed tree with Go text/template's semantics.

use crate::parse::{Branch, Cmd, Node, Num, Operand, Pipe};
use crate::value::Value;
use crate::{builtins, Error, FuncError, Template, Tree};

/// Nested `template` calls plus nested blocks. Go's `maxExecDepth` is 100000 (template
/// calls only); we stop earlier to protect the stack.
const MAX_DEPTH: usize = 300;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct State<'a> {
    pub tmpl: &'a Template,
    pub tree: &'a Tree,
    pub vars: Vec<(String, Value)>,
    pub depth: usize,
    pub out: String,
    pub overrides: Option<&'a Overrides<'a>>,
}

/// Functions resolved at execution time (they may borrow the caller's state).
pub type Overrides<'a> = dyn Fn(&str, &[Value]) -> Option<Result<Value, FuncError>> + 'a;

type R<T> = Result<T, Error>;

impl<'a> State<'a> {
    fn err(&self, pos: usize, context: &str, msg: impl std::fmt::Display) -> Error {
        let text = &self.tree.text;
        let pos = pos.min(text.len());
        let before = &text[..pos];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => pos,
        };
        Error::Exec(format!(
            "template: {}:{}:{}: executing {:?} at <{}>: {}",
            self.tree.parse_name, line, col, self.tree.name, context, msg
        ))
    }

    pub fn walk(&mut self, dot: &Value, nodes: &[Node]) -> R<()> {
        match self.walk_list(dot, nodes)? {
            Flow::Normal => Ok(()),
            // The parser rejects break/continue outside range.
            Flow::Break | Flow::Continue => Ok(()),
        }
    }

    fn walk_list(&mut self, dot: &Value, nodes: &[Node]) -> R<Flow> {
        for n in nodes {
            match self.walk_node(dot, n)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_node(&mut self, dot: &Value, node: &Node) -> R<Flow> {
        match node {
            Node::Text(t) if self.tmpl.html_text => {
                self.out.push_str(&builtins::html_text_literal(t))
            }
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    if self.tmpl.html_text {
                        let mut s = String::new();
                        v.write_go(&mut s, true);
                        self.out.push_str(&builtins::html_text_escape(&s));
                    } else {
                        v.write_go(&mut self.out, true);
                    }
                }
            }
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.err(
                        b.pos,
                        "if",
                        format!("exceeded maximum template depth ({MAX_DEPTH})"),
                    ));
                }
                self.depth += 1;
                let r = match node {
                    Node::If(_) => self.walk_if_with(dot, b, false),
                    Node::With(_) => self.walk_if_with(dot, b, true),
                    _ => self.walk_range(dot, b),
                };
                self.depth -= 1;
                return r;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template { pos, name, pipe } => {
                let tree = self
                    .tmpl
                    .trees
                    .get(name)
                    .ok_or_else(|| {
                        self.err(
                            *pos,
                            &format!("template {name:?}"),
                            format!("no such template {name:?}"),
                        )
                    })?
                    .clone();
                let data = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                if self.depth >= MAX_DEPTH {
                    return Err(self.err(
                        *pos,
                        &format!("template {name:?}"),
                        format!("exceeded maximum template depth ({MAX_DEPTH})"),
                    ));
                }
                let mut sub = State {
                    tmpl: self.tmpl,
                    tree: &tree,
                    vars: vec![("$".to_string(), data.clone())],
                    depth: self.depth + 1,
                    out: std::mem::take(&mut self.out),
                    overrides: self.overrides,
                };
                let r = sub.walk(&data, &tree.root);
                self.out = std::mem::take(&mut sub.out);
                r?;
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_if_with(&mut self, dot: &Value, b: &Branch, with: bool) -> R<Flow> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let r = if v.truthy() {
            if with {
                self.walk_list(&v, &b.list)
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Value, b: &Branch) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_cmds(dot, &b.pipe)?;
        let items = val.range_items().map_err(|e| self.err(b.pos, "range", e))?;
        if b.pipe.assign {
            // "range $i, $e = ..." assigns existing variables each iteration.
        } else {
            for d in &b.pipe.decl {
                self.vars.push((d.clone(), val.clone()));
            }
        }
        let ndecl = b.pipe.decl.len();
        let mut ran = false;
        for (k, v) in items {
            ran = true;
            if ndecl > 0 {
                let (elem_name, key_name) = if ndecl == 2 {
                    (&b.pipe.decl[1], Some(&b.pipe.decl[0]))
                } else {
                    (&b.pipe.decl[0], None)
                };
                self.set_var(elem_name, v.clone());
                if let Some(kn) = key_name {
                    self.set_var(kn, k.clone());
                }
            }
            let inner = self.vars.len();
            let f = self.walk_list(&v, &b.list)?;
            self.vars.truncate(inner);
            if let Flow::Break = f {
                break;
            }
        }
        let r = if !ran {
            match &b.else_list {
                Some(e) => self.walk_list(dot, e),
                None => Ok(Flow::Normal),
            }
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        r
    }

    fn set_var(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var(&self, pos: usize, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(pos, name, format!("undefined variable: {name}")))
    }

    fn eval_cmds(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut value: Option<Value> = None;
        for c in &pipe.cmds {
            value = Some(self.eval_command(dot, c, value)?);
        }
        Ok(value.unwrap_or_default())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let value = self.eval_cmds(dot, pipe)?;
        for d in &pipe.decl {
            if pipe.assign {
                self.set_var(d, value.clone());
            } else {
                self.vars.push((d.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Cmd, fin: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || fin.is_some() {
            let first = &cmd.args[0];
            return Err(self.err(
                first.pos(),
                &first.to_string(),
                format!("can't give argument to non-function {first}"),
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Cmd, fin: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Operand::Field(pos, names) => {
                let recv = dot.clone();
                self.eval_field_chain(dot, recv, *pos, &first.to_string(), names, &cmd.args, fin)
            }
            Operand::Chain(pos, node, fields) => {
                let recv = self.eval_arg(dot, node)?;
                self.eval_field_chain(dot, recv, *pos, &first.to_string(), fields, &cmd.args, fin)
            }
            Operand::Ident(pos, name) => {
                self.eval_function(dot, *pos, &cmd.to_string(), name, &cmd.args, fin)
            }
            Operand::Var(pos, name, fields) => {
                let v = self.var(*pos, name)?;
                if fields.is_empty() {
                    self.not_a_function(cmd, &fin)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, *pos, &first.to_string(), fields, &cmd.args, fin)
            }
            Operand::Pipe(_, p) => {
                self.not_a_function(cmd, &fin)?;
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, p);
                self.vars.truncate(mark);
                v
            }
            _ => {
                self.not_a_function(cmd, &fin)?;
                self.eval_arg(dot, first)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        pos: usize,
        ctx: &str,
        names: &[String],
        args: &[Operand],
        fin: Option<Value>,
    ) -> R<Value> {
        let n = names.len();
        for name in &names[..n - 1] {
            recv = recv
                .field(name, self.tmpl.missing_zero)
                .map_err(|e| self.err(pos, ctx, e))?;
        }
        let last = &names[n - 1];
        let has_args = args.len() > 1 || fin.is_some();
        if has_args {
            let mut vals = Vec::with_capacity(args.len());
            for a in &args[1..] {
                vals.push(self.eval_arg(dot, a)?);
            }
            if let Some(f) = fin {
                vals.push(f);
            }
            return recv
                .call_method(last, &vals)
                .map_err(|e| self.err(pos, ctx, e));
        }
        recv.field(last, self.tmpl.missing_zero)
            .map_err(|e| self.err(pos, ctx, e))
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        pos: usize,
        ctx: &str,
        name: &str,
        args: &[Operand],
        fin: Option<Value>,
    ) -> R<Value> {
        // and/or short-circuit (Go 1.18+).
        if name == "and" || name == "or" {
            let total = args.len() - 1 + usize::from(fin.is_some());
            if total < 1 {
                return Err(self.err(
                    pos,
                    ctx,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut v = Value::Nil;
            for a in &args[1..] {
                v = self.eval_arg(dot, a)?;
                if v.truthy() == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(args.len());
        for a in &args[1..] {
            vals.push(self.eval_arg(dot, a)?);
        }
        if let Some(f) = fin {
            vals.push(f);
        }
        if name == "tmpl" && self.tmpl.funcs.contains("tmpl") {
            return self.call_tmpl(pos, &vals);
        }
        let overridden = self.overrides.and_then(|o| o(name, &vals));
        let r = match overridden {
            Some(r) => r,
            None => match self.tmpl.funcs.get(name) {
                Some(f) => f(&vals),
                None => builtins::call(name, &vals),
            },
        };
        r.map_err(|e| match e {
            FuncError::Call(m) => self.err(pos, ctx, format!("error calling {name}: {m}")),
            FuncError::Arg(m) => self.err(pos, ctx, m),
        })
    }

    fn call_tmpl(&mut self, pos: usize, vals: &[Value]) -> R<Value> {
        let (Some(Value::Str(name)), Some(data)) = (vals.first(), vals.get(1)) else {
            return Err(self.err(pos, "tmpl", "wrong number of args for tmpl: want 2"));
        };
        let tree = self
            .tmpl
            .trees
            .get(&**name)
            .ok_or_else(|| {
                self.err(
                    pos,
                    "tmpl",
                    format!("error calling tmpl: no such template {:?}", &**name),
                )
            })?
            .clone();
        let mut sub = State {
            tmpl: self.tmpl,
            tree: &tree,
            vars: vec![("$".into(), data.clone())],
            depth: self.depth + 1,
            out: String::new(),
            overrides: self.overrides,
        };
        if sub.depth >= MAX_DEPTH {
            return Err(self.err(pos, "tmpl", "exceeded maximum template depth"));
        }
        sub.walk(data, &tree.root)?;
        Ok(Value::Str(sub.out.into()))
    }

    fn eval_arg(&mut self, dot: &Value, a: &Operand) -> R<Value> {
        Ok(match a {
            Operand::Dot(_) => dot.clone(),
            Operand::Nil(_) => Value::Nil,
            Operand::Bool(_, b) => Value::Bool(*b),
            Operand::Number(_, _, Num::Int(i)) => Value::Int(*i),
            Operand::Number(_, _, Num::Float(f)) => Value::Float(*f),
            Operand::Str(_, s) => Value::str(s),
            Operand::Field(pos, names) => {
                return self.eval_field_chain(
                    dot,
                    dot.clone(),
                    *pos,
                    &a.to_string(),
                    names,
                    std::slice::from_ref(a),
                    None,
                )
            }
            Operand::Var(pos, name, fields) => {
                let v = self.var(*pos, name)?;
                if fields.is_empty() {
                    v
                } else {
                    return self.eval_field_chain(
                        dot,
                        v,
                        *pos,
                        &a.to_string(),
                        fields,
                        std::slice::from_ref(a),
                        None,
                    );
                }
            }
            Operand::Chain(pos, node, fields) => {
                let recv = self.eval_arg(dot, node)?;
                return self.eval_field_chain(
                    dot,
                    recv,
                    *pos,
                    &a.to_string(),
                    fields,
                    std::slice::from_ref(a),
                    None,
                );
            }
            Operand::Pipe(_, p) => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, p);
                self.vars.truncate(mark);
                v?
            }
            Operand::Ident(pos, name) => {
                return self.eval_function(dot, *pos, name, name, std::slice::from_ref(a), None)
            }
        })
    }
}
