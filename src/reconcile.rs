//! "Make the running set match this list, by name": the one vocabulary of live change, used by
//! the cameras, the sinks and the live config (which reports what each apply did).

/// What an apply did (or will do) to one named item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Restarted,
    Unchanged,
    Removed,
}

/// The difference between what runs and what is wanted: each wanted item with its change
/// (in the wanted order), then the names that run but are no longer wanted.
#[derive(Debug)]
pub struct Plan<'a, C> {
    pub wanted: Vec<(&'a C, Change)>,
    pub removed: Vec<String>,
}

/// Compares by name, then by value: a running item with the same name and an equal config is
/// unchanged, one with a different config is restarted, a new name is added.
pub fn plan<'r, 'a, C: PartialEq + 'r>(
    running: impl IntoIterator<Item = (&'r str, &'r C)>,
    wanted: &[&'a C],
    name: impl Fn(&C) -> &str,
) -> Plan<'a, C> {
    let running: Vec<(&str, &C)> = running.into_iter().collect();
    let wanted_steps = wanted
        .iter()
        .map(|c| {
            let change = match running.iter().find(|(n, _)| *n == name(c)) {
                Some((_, r)) if *r == *c => Change::Unchanged,
                Some(_) => Change::Restarted,
                None => Change::Added,
            };
            (*c, change)
        })
        .collect();
    let removed = running
        .iter()
        .filter(|(n, _)| !wanted.iter().any(|c| name(c) == *n))
        .map(|(n, _)| n.to_string())
        .collect();
    Plan {
        wanted: wanted_steps,
        removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_every_kind_of_change() {
        let (a1, b1, c1) = (("a", 1), ("b", 1), ("c", 1));
        let (a1w, b2w, d1w) = (("a", 1), ("b", 2), ("d", 1));
        let running = [("a", &a1), ("b", &b1), ("c", &c1)];
        let p = plan(running, &[&a1w, &b2w, &d1w], |c| c.0);
        let got: Vec<_> = p.wanted.iter().map(|(c, ch)| (c.0, *ch)).collect();
        assert_eq!(
            got,
            [
                ("a", Change::Unchanged),
                ("b", Change::Restarted),
                ("d", Change::Added)
            ]
        );
        assert_eq!(p.removed, ["c"]);
    }
}
