//! `confab migrate`: brings a database written by the original up to what confab looks
//! up. The original stored emails exactly as typed (`Alice@Example.com`); confab trims
//! and lowercases them at login, so such users would not be found. A dry run shows every
//! change; `--apply` makes them.
//!
//! Addresses that differ only in case were two users in the original. Only one of them
//! can own the normalised address: the one already stored that way, else the oldest. The
//! others are left as they are and listed, for an operator to merge or remove.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};

use super::{is_duplicate_key, MongoStore};
use crate::domain::Email;

/// A user as the migration sees it: the stored id (shown as stored), email and creation time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUser {
    pub id: Bson,
    pub email: String,
    pub created_at: i64,
}

impl StoredUser {
    pub fn shown_id(&self) -> String {
        match &self.id {
            Bson::ObjectId(o) => o.to_hex(),
            Bson::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rename {
    pub user: StoredUser,
    pub to: String,
}

/// Users whose addresses are one address once normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseDuplicates {
    pub address: String,
    pub keep: StoredUser,
    pub leave: Vec<StoredUser>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct EmailPlan {
    pub users: usize,
    pub unchanged: usize,
    pub renames: Vec<Rename>,
    pub duplicates: Vec<CaseDuplicates>,
    /// Stored emails that are not addresses at all (the original did not validate).
    pub invalid: Vec<StoredUser>,
}

/// What to change, from the stored users alone (no database access, so it is tested
/// directly).
pub fn plan_emails(users: Vec<StoredUser>) -> EmailPlan {
    let mut plan = EmailPlan { users: users.len(), ..EmailPlan::default() };
    let mut by_address: BTreeMap<String, Vec<StoredUser>> = BTreeMap::new();
    for user in users {
        match Email::parse(&user.email) {
            Ok(email) => by_address.entry(email.as_str().to_string()).or_default().push(user),
            Err(_) => plan.invalid.push(user),
        }
    }
    for (address, mut group) in by_address {
        // The owner: already stored normalised, else the oldest (then the smallest id).
        group.sort_by(|a, b| {
            (a.email != address, a.created_at, a.shown_id()).cmp(&(b.email != address, b.created_at, b.shown_id()))
        });
        let keep = group.remove(0);
        if keep.email == address {
            plan.unchanged += 1;
        } else {
            plan.renames.push(Rename { user: keep.clone(), to: address.clone() });
        }
        if !group.is_empty() {
            plan.duplicates.push(CaseDuplicates { address, keep, leave: group });
        }
    }
    plan
}

/// The plan and, after `--apply`, what was done.
#[derive(Debug)]
pub struct EmailReport {
    pub plan: EmailPlan,
    pub applied: Option<Applied>,
}

#[derive(Debug, Default)]
pub struct Applied {
    pub renamed: usize,
    /// Renames that did not happen: the user changed or the address was taken meanwhile.
    pub skipped: Vec<(StoredUser, String)>,
}

impl MongoStore {
    /// Plans the email normalisation and, with `apply`, carries it out.
    pub async fn migrate_emails(&self, apply: bool) -> anyhow::Result<EmailReport> {
        let mut cursor = self.users.find(doc! {}).projection(doc! { "_id": 1, "email": 1, "createdAt": 1 }).await?;
        let mut users = Vec::new();
        while let Some(d) = cursor.try_next().await? {
            users.push(StoredUser {
                id: d.get("_id").cloned().unwrap_or(Bson::Null),
                email: match d.get("email") {
                    Some(Bson::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                },
                // This tool reads whatever is stored, to list it: an unknown creation
                // time counts as the oldest.
                created_at: match d.get("createdAt") {
                    Some(Bson::DateTime(t)) => t.timestamp_millis(),
                    Some(Bson::Int64(n)) => *n,
                    _ => 0,
                },
            });
        }
        let plan = plan_emails(users);
        let applied = if apply { Some(self.apply_renames(&plan.renames).await?) } else { None };
        Ok(EmailReport { plan, applied })
    }

    async fn apply_renames(&self, renames: &[Rename]) -> anyhow::Result<Applied> {
        let mut applied = Applied::default();
        for rename in renames {
            // Only if the stored email is still the one planned from.
            let filter: Document = doc! { "_id": rename.user.id.clone(), "email": &rename.user.email };
            let update = doc! { "$set": { "email": &rename.to } };
            match self.users.update_one(filter, update).await {
                Ok(result) if result.modified_count == 1 => applied.renamed += 1,
                Ok(_) => applied.skipped.push((rename.user.clone(), "changed since it was read".into())),
                Err(e) if is_duplicate_key(&e) => {
                    applied.skipped.push((rename.user.clone(), format!("{} is taken by another user", rename.to)))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(applied)
    }

    /// How many chats a user is in, for the duplicates report.
    pub async fn chat_count(&self, user: &StoredUser) -> anyhow::Result<u64> {
        Ok(self.chats.count_documents(doc! { "users": user.shown_id() }).await?)
    }
}

/// Renders the report; `chats` gives each listed duplicate's chat count.
pub fn render(report: &EmailReport, chats: &BTreeMap<String, u64>) -> String {
    let plan = &report.plan;
    let mut out = String::new();
    let line = |out: &mut String, args: fmt::Arguments| {
        let _ = out.write_fmt(args);
        out.push('\n');
    };
    let who = |u: &StoredUser| {
        let count = chats.get(&u.shown_id()).map(|n| format!(", {n} chat(s)")).unwrap_or_default();
        format!("{} {:?}{count}", u.shown_id(), u.email)
    };
    line(&mut out, format_args!("Emails in `users`: {} user(s), {} already normalised.", plan.users, plan.unchanged));
    let verb = if report.applied.is_some() { "Renamed" } else { "To rename" };
    line(&mut out, format_args!("{verb} (trimmed and lowercased, as confab looks them up): {}", plan.renames.len()));
    for r in &plan.renames {
        line(&mut out, format_args!("  {} {:?} -> {:?}", r.user.shown_id(), r.user.email, r.to));
    }
    line(&mut out, format_args!("Addresses that differ only in case: {}", plan.duplicates.len()));
    for d in &plan.duplicates {
        line(&mut out, format_args!("  {}:", d.address));
        line(&mut out, format_args!("    keeps the address: {}", who(&d.keep)));
        for other in &d.leave {
            line(
                &mut out,
                format_args!("    left unchanged:    {} (cannot log in; merge or delete by hand)", who(other)),
            );
        }
    }
    line(&mut out, format_args!("Not an email address: {}", plan.invalid.len()));
    for u in &plan.invalid {
        line(&mut out, format_args!("  {} {:?} (cannot log in)", u.shown_id(), u.email));
    }
    match &report.applied {
        None if plan.renames.is_empty() => line(&mut out, format_args!("Dry run: nothing to change.")),
        None => line(&mut out, format_args!("Dry run: nothing was changed. Run `confab migrate --apply` to rename.")),
        Some(applied) => {
            line(&mut out, format_args!("Applied: {} renamed, {} skipped.", applied.renamed, applied.skipped.len()));
            for (u, why) in &applied.skipped {
                line(&mut out, format_args!("  skipped {}: {why}", who(u)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: &str, created_at: i64) -> StoredUser {
        StoredUser { id: Bson::String(id.into()), email: email.into(), created_at }
    }

    #[test]
    fn plans_renames_duplicates_and_invalid_addresses() {
        let plan = plan_emails(vec![
            user("a", "Alice@Example.com", 1),
            user("b", "bob@example.com", 2),
            user("c", "  carol@example.com ", 3),
            user("d1", "Dave@Example.com", 4),
            user("d2", "DAVE@example.com", 1),
            user("e1", "Eve@example.com", 1),
            user("e2", "eve@example.com", 9),
            user("x", "undefined", 1),
        ]);
        assert_eq!(plan.users, 8);
        assert_eq!(plan.unchanged, 2, "bob, and eve's normalised twin");
        let renames: Vec<(&str, &str)> = plan.renames.iter().map(|r| (r.user.email.as_str(), r.to.as_str())).collect();
        assert_eq!(
            renames,
            [
                ("Alice@Example.com", "alice@example.com"),
                ("  carol@example.com ", "carol@example.com"),
                ("DAVE@example.com", "dave@example.com"),
            ]
        );
        assert_eq!(plan.duplicates.len(), 2);
        let dave = &plan.duplicates[0];
        assert_eq!((dave.keep.shown_id(), dave.leave[0].shown_id()), ("d2".into(), "d1".into()), "the oldest");
        let eve = &plan.duplicates[1];
        assert_eq!((eve.keep.shown_id(), eve.leave[0].shown_id()), ("e2".into(), "e1".into()), "already normalised");
        assert_eq!(plan.invalid, vec![user("x", "undefined", 1)]);
    }
}
