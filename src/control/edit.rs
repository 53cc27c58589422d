//! Edits to the operator's TOML file that keep its comments and layout (toml_edit): one
//! camera, rule, zone, line or sink replaced, added or deleted; a partial document merged; and the
//! secrets a redacted copy showed as `"(set)"` put back from the running file, so a client
//! that only ever saw redacted values can send them back unchanged.

use super::live::SECRET_KEYS;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table};

/// The sections edited item by item (arrays of tables keyed by `name`).
pub const SECTIONS: [&str; 5] = ["camera", "rule", "zone", "line", "sink"];

/// What the redacted copy shows in place of a secret.
pub const SET: &str = "(set)";
/// What it shows in place of a URL's password.
const URL_MASK: &str = "***";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error("unknown section \"{0}\" (camera, rule, zone, line or sink)")]
    Section(String),
    #[error("no {0} named \"{1}\"")]
    Missing(String, String),
    #[error("{0}")]
    Body(String),
    #[error("{0}")]
    Secret(String),
    /// Creating an item whose name is taken.
    #[error("a {0} named \"{1}\" exists; edit it instead")]
    Exists(String, String),
    /// The body names another item than the path, without asking for a rename.
    #[error("the body's name \"{body}\" differs from the path's \"{path}\"; to rename, send ?rename=true")]
    NameMismatch { path: String, body: String },
    /// Deleting an item others refer to.
    #[error("{0}")]
    InUse(String),
}

fn parse(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| EditError::Body(format!("not TOML: {e}")))
}

fn section(s: &str) -> Result<&str, EditError> {
    SECTIONS
        .iter()
        .find(|k| **k == s)
        .copied()
        .ok_or_else(|| EditError::Section(s.to_string()))
}

fn name_of(t: &Table) -> Option<&str> {
    t.get("name").and_then(|v| v.as_str())
}

/// A JSON object as a TOML table (nested objects become sub-tables, `[camera.motion]`).
fn table_from_json(value: &serde_json::Value) -> Result<Table, EditError> {
    if !value.is_object() {
        return Err(EditError::Body("the body must be a JSON object".into()));
    }
    let t = toml::Value::try_from(value)
        .map_err(|e| EditError::Body(format!("cannot be written as TOML: {e}")))?;
    let text = toml::to_string(&t)
        .map_err(|e| EditError::Body(format!("cannot be written as TOML: {e}")))?;
    Ok(parse(&text)?.as_table().clone())
}

fn array<'d>(doc: &'d mut DocumentMut, key: &str) -> Result<&'d mut ArrayOfTables, EditError> {
    if !doc.contains_key(key) {
        doc.insert(key, Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc[key]
        .as_array_of_tables_mut()
        .ok_or_else(|| EditError::Body(format!("[{key}] is not a list of [[{key}]] tables")))
}

/// `text` with the item `name` of `section` replaced by `value` (or added at the end).
/// The item keeps its place and the comments above it.
pub fn put_item(
    text: &str,
    section_name: &str,
    name: &str,
    value: &serde_json::Value,
) -> Result<String, EditError> {
    let key = section(section_name)?;
    let mut doc = parse(text)?;
    let mut fresh = table_from_json(value)?;
    if name_of(&fresh).is_none() {
        fresh.insert("name", toml_edit::value(name));
    }
    put_table(&mut doc, key, name, fresh)?;
    Ok(doc.to_string())
}

/// Puts `fresh` in the place of item `name` (or at the end), secrets put back.
fn put_table(doc: &mut DocumentMut, key: &str, name: &str, fresh: Table) -> Result<(), EditError> {
    let old = doc.clone();
    let list = array(doc, key)?;
    let found = list.iter().position(|t| name_of(t) == Some(name));
    match found {
        Some(i) => {
            if let Some(t) = list.get_mut(i) {
                let decor = t.decor().clone();
                *t = fresh;
                *t.decor_mut() = decor;
            }
        }
        None => list.push(fresh),
    }
    restore_secrets(doc, &old)
}

/// `text` with a new item of `section` (named by the body's `name`); refused when that name
/// is taken, so adding never replaces.
pub fn create_item(
    text: &str,
    section_name: &str,
    value: &serde_json::Value,
) -> Result<(String, String), EditError> {
    let key = section(section_name)?;
    let mut doc = parse(text)?;
    let fresh = table_from_json(value)?;
    let name = name_of(&fresh)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| EditError::Body(format!("a new {key} needs a \"name\"")))?
        .to_string();
    let list = array(&mut doc, key)?;
    if list.iter().any(|t| name_of(t) == Some(name.as_str())) {
        return Err(EditError::Exists(key.into(), name));
    }
    let old = doc.clone();
    array(&mut doc, key)?.push(fresh);
    restore_secrets(&mut doc, &old)?;
    Ok((doc.to_string(), name))
}

/// `text` with the existing item `name` of `section` replaced by `value` (keeping its place
/// and comments). The body's name must be the path's unless `rename` is asked for (and the
/// new name is free); an item that does not exist is not created here.
pub fn replace_item(
    text: &str,
    section_name: &str,
    name: &str,
    value: &serde_json::Value,
    rename: bool,
) -> Result<String, EditError> {
    let key = section(section_name)?;
    let mut doc = parse(text)?;
    let mut fresh = table_from_json(value)?;
    match name_of(&fresh).map(str::to_string) {
        None => {
            fresh.insert("name", toml_edit::value(name));
        }
        Some(body) if body != name => {
            if !rename {
                return Err(EditError::NameMismatch {
                    path: name.into(),
                    body,
                });
            }
            let list = array(&mut doc, key)?;
            if list.iter().any(|t| name_of(t) == Some(body.as_str())) {
                return Err(EditError::Exists(key.into(), body));
            }
        }
        Some(_) => {}
    }
    if !array(&mut doc, key)?
        .iter()
        .any(|t| name_of(t) == Some(name))
    {
        return Err(EditError::Missing(key.into(), name.into()));
    }
    put_table(&mut doc, key, name, fresh)?;
    Ok(doc.to_string())
}

/// Who refers to item `name` of `key`: rules naming a zone, cameras named by rules and zones,
/// sinks named by rules.
fn users(doc: &DocumentMut, key: &str, name: &str) -> Vec<String> {
    let names = |t: &Table, field: &str| -> bool {
        t.get(field)
            .and_then(|v| v.as_array())
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(name)))
    };
    let each = |section: &str| -> Vec<&Table> {
        doc.get(section)
            .and_then(Item::as_array_of_tables)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let label = |kind: &str, t: &Table| format!("{kind} \"{}\"", name_of(t).unwrap_or("?"));
    match key {
        "zone" => {
            for r in each("rule") {
                if r.get("zone").and_then(|v| v.as_str()) == Some(name) {
                    out.push(label("rule", r));
                }
            }
        }
        "camera" => {
            for r in each("rule") {
                if names(r, "cameras") {
                    out.push(label("rule", r));
                }
            }
            for z in each("zone") {
                if names(z, "cameras") {
                    out.push(label("zone", z));
                }
            }
            for l in each("line") {
                if names(l, "cameras") {
                    out.push(label("line", l));
                }
            }
        }
        "line" => {
            for r in each("rule") {
                if r.get("crosses").and_then(|v| v.as_str()) == Some(name) {
                    out.push(label("rule", r));
                }
            }
        }
        "sink" => {
            for r in each("rule") {
                if names(r, "sinks") {
                    out.push(label("rule", r));
                }
            }
        }
        _ => {}
    }
    out
}

/// `text` without the item `name` of `section`; refused while other items refer to it.
pub fn delete_item(text: &str, section_name: &str, name: &str) -> Result<String, EditError> {
    let key = section(section_name)?;
    let mut doc = parse(text)?;
    let using = users(&doc, key, name);
    if !using.is_empty() {
        return Err(EditError::InUse(format!(
            "{key} \"{name}\" is used by {}; change {} first",
            using.join(", "),
            if using.len() == 1 { "it" } else { "them" }
        )));
    }
    let list = array(&mut doc, key)?;
    let before = list.len();
    list.retain(|t| name_of(t) != Some(name));
    if list.len() == before {
        return Err(EditError::Missing(key.into(), name.into()));
    }
    if list.is_empty() {
        doc.remove(key);
    }
    Ok(doc.to_string())
}

/// The items of `section` as JSON objects, from an already redacted text.
pub fn items(redacted: &str, section_name: &str) -> Result<Vec<serde_json::Value>, EditError> {
    let key = section(section_name)?;
    let doc: toml::Table = toml::from_str(redacted).map_err(|e| EditError::Body(e.to_string()))?;
    let list = match doc.get(key) {
        Some(toml::Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    list.into_iter()
        .map(|v| serde_json::to_value(v).map_err(|e| EditError::Body(e.to_string())))
        .collect()
}

/// `partial` merged into `text`: plain tables key by key (recursively), `[[camera]]`-style
/// items by `name` (keys merged into the item of that name, or a new item appended; an item
/// with `delete = true` is removed), any other value replaced.
pub fn merge(text: &str, partial: &str) -> Result<String, EditError> {
    let mut doc = parse(text)?;
    let old = doc.clone();
    let part = parse(partial)?;
    merge_table(doc.as_table_mut(), part.as_table())?;
    restore_secrets(&mut doc, &old)?;
    Ok(doc.to_string())
}

fn merge_table(into: &mut Table, from: &Table) -> Result<(), EditError> {
    for (k, v) in from.iter() {
        match (into.get_mut(k), v) {
            (Some(Item::Table(a)), Item::Table(b)) => merge_table(a, b)?,
            (Some(Item::ArrayOfTables(a)), Item::ArrayOfTables(b)) => {
                for t in b.iter() {
                    let name = name_of(t)
                        .ok_or_else(|| EditError::Body(format!("a [[{k}]] item needs a name")))?
                        .to_string();
                    if t.get("delete").and_then(|d| d.as_bool()) == Some(true) {
                        let before = a.len();
                        a.retain(|x| name_of(x) != Some(name.as_str()));
                        if a.len() == before {
                            return Err(EditError::Missing(k.into(), name));
                        }
                        continue;
                    }
                    let found = a.iter().position(|x| name_of(x) == Some(name.as_str()));
                    match found {
                        Some(i) => {
                            if let Some(x) = a.get_mut(i) {
                                merge_table(x, t)?;
                            }
                        }
                        None => a.push(t.clone()),
                    }
                }
            }
            _ => {
                into.insert(k, v.clone());
            }
        }
    }
    Ok(())
}

/// Puts back every secret `new` shows as `"(set)"` (and every URL password shown as `***`)
/// from the same place in `old`; items of `[[…]]` lists are matched by `name`. A `"(set)"`
/// with nothing behind it is an error naming the field (it would otherwise become the
/// literal password "(set)").
pub fn restore_secrets(new: &mut DocumentMut, old: &DocumentMut) -> Result<(), EditError> {
    restore_table(new.as_table_mut(), Some(old.as_table()), "")
}

fn restore_table(new: &mut Table, old: Option<&Table>, at: &str) -> Result<(), EditError> {
    for (k, v) in new.iter_mut() {
        let path = if at.is_empty() {
            k.get().to_string()
        } else {
            format!("{at}.{}", k.get())
        };
        let before = old.and_then(|o| o.get(k.get()));
        match v {
            Item::Table(t) => restore_table(t, before.and_then(Item::as_table), &path)?,
            Item::ArrayOfTables(list) => {
                for t in list.iter_mut() {
                    let name = name_of(t).map(str::to_string);
                    let same = before
                        .and_then(Item::as_array_of_tables)
                        .and_then(|o| o.iter().find(|x| name_of(x) == name.as_deref()));
                    let label = format!("{path}[{}]", name.as_deref().unwrap_or("?"));
                    restore_table(t, same, &label)?;
                }
            }
            Item::Value(value) => {
                let Some(s) = value.as_str() else { continue };
                let was = before.and_then(|b| b.as_str());
                let restored = if SECRET_KEYS.contains(&k.get()) && s == SET {
                    Some(was.map(str::to_string).ok_or_else(|| {
                        EditError::Secret(format!(
                            "{path}: \"(set)\" stands for the current secret, but there is none here; send the secret itself"
                        ))
                    })?)
                } else if k.get() == "url" {
                    unmask_url(s, was, &path)?
                } else {
                    None
                };
                if let Some(r) = restored {
                    let decor = value.decor().clone();
                    *value = toml_edit::Value::from(r);
                    *value.decor_mut() = decor;
                }
            }
            Item::None => {}
        }
    }
    Ok(())
}

/// A URL whose password is the mask gets the old URL's password when the rest (scheme,
/// user, host, port) is the same.
fn unmask_url(new: &str, old: Option<&str>, path: &str) -> Result<Option<String>, EditError> {
    let Ok(mut u) = url::Url::parse(new) else {
        return Ok(None);
    };
    if u.password() != Some(URL_MASK) {
        return Ok(None);
    }
    let refuse = || {
        EditError::Secret(format!(
            "{path}: the password shows as {URL_MASK}, but the URL's host or user changed; send the password itself"
        ))
    };
    let o = old
        .and_then(|o| url::Url::parse(o).ok())
        .ok_or_else(refuse)?;
    let same = o.scheme() == u.scheme()
        && o.username() == u.username()
        && o.host_str() == u.host_str()
        && o.port() == u.port();
    if !same || o.password().is_none() {
        return Err(refuse());
    }
    u.set_password(o.password()).map_err(|_| refuse())?;
    Ok(Some(u.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# site
[device]
id = "gw" # the id

# the dock camera
[[camera]]
name = "dock"
url = "rtsp://admin:pw-1@10.0.0.5/s1"

[[sink]]
name = "ops"
kind = "webhook"
url = "https://ops.example/hook"
secret = "whsec_c2VjcmV0"
"#;

    #[test]
    fn an_item_is_replaced_in_place_with_its_comments_and_secrets() {
        let body = serde_json::json!({"name": "dock", "url": "rtsp://admin:***@10.0.0.5/s1", "detect_fps": 3.0});
        let out = put_item(FILE, "camera", "dock", &body).unwrap();
        assert!(out.contains("# the dock camera\n[[camera]]"), "{out}");
        assert!(out.contains("rtsp://admin:pw-1@10.0.0.5/s1"), "{out}");
        assert!(out.contains("detect_fps = 3.0"), "{out}");
        assert!(out.contains("id = \"gw\" # the id"), "{out}");
        let sink = serde_json::json!({"kind": "webhook", "url": "https://ops.example/v2", "secret": "(set)"});
        let out = put_item(&out, "sink", "ops", &sink).unwrap();
        assert!(
            out.contains("whsec_c2VjcmV0") && out.contains("/v2"),
            "{out}"
        );
    }

    #[test]
    fn secrets_cannot_be_invented_or_moved_to_another_host() {
        let new =
            serde_json::json!({"kind": "webhook", "url": "https://x.example/", "secret": "(set)"});
        assert!(matches!(
            put_item(FILE, "sink", "new", &new),
            Err(EditError::Secret(m)) if m.contains("sink[new].secret")
        ));
        let moved = serde_json::json!({"url": "rtsp://admin:***@10.9.9.9/s1"});
        assert!(matches!(
            put_item(FILE, "camera", "dock", &moved),
            Err(EditError::Secret(_))
        ));
    }

    #[test]
    fn items_are_added_deleted_and_merged_by_name() {
        let body = serde_json::json!({"polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]});
        let out = put_item(FILE, "zone", "lane", &body).unwrap();
        assert!(
            out.contains("[[zone]]") && out.contains("name = \"lane\""),
            "{out}"
        );
        let out = delete_item(&out, "camera", "dock").unwrap();
        assert!(!out.contains("[[camera]]"), "{out}");
        assert_eq!(
            delete_item(&out, "camera", "dock"),
            Err(EditError::Missing("camera".into(), "dock".into()))
        );
        assert!(matches!(
            delete_item(&out, "device", "x"),
            Err(EditError::Section(_))
        ));
        let merged = merge(
            FILE,
            "[[camera]]\nname = \"dock\"\ndetect_fps = 5\n[[camera]]\nname = \"gate\"\nurl = \"rtsp://10.0.0.6/s\"\n",
        )
        .unwrap();
        assert!(
            merged.contains("pw-1") && merged.contains("detect_fps = 5"),
            "{merged}"
        );
        assert!(merged.contains("name = \"gate\""), "{merged}");
        let gone = merge(&merged, "[[camera]]\nname = \"gate\"\ndelete = true\n").unwrap();
        assert!(!gone.contains("gate") && gone.contains("dock"), "{gone}");
    }
}
