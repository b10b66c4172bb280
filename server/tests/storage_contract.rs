//! The storage contract: every backend `storage::open` knows passes the same tests (SQLite always,
//! PostgreSQL when `ETALON_POSTGRES_URL` is set: see `tests/common/db.rs` and `.ci/postgres`).

#[path = "common/db.rs"]
mod db;

use db::TestDb;
use etalon_server::storage::{
    self, AnswerRecord, Appended, BankRecord, CampaignRecord, Org, Participation, ResponseRow, SessionRecord,
    Storage, StorageError, XapiLrs,
};
use std::sync::Arc;

/// A test run on every backend: `async fn NAME_on(db: &TestDb)` becomes the test `NAME`.
macro_rules! contract {
    ($($name:ident => $body:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            for db in db::backends() {
                eprintln!("{}: {}", stringify!($name), db.backend);
                $body(&db).await;
            }
        }
    )*};
}

contract! {
    migrations_are_idempotent => migrations_are_idempotent_on,
    concurrent_opens_migrate_once => concurrent_opens_migrate_once_on,
    a_newer_schema_is_refused => a_newer_schema_is_refused_on,
    orgs => orgs_on,
    bank_versions => bank_versions_on,
    concurrent_bank_puts => concurrent_bank_puts_on,
    campaigns => campaigns_on,
    org_scoping => org_scoping_on,
    sessions => sessions_on,
    answers => answers_on,
    the_result_is_atomic_with_the_last_answer => the_result_is_atomic_with_the_last_answer_on,
    concurrent_appends_record_one => concurrent_appends_record_one_on,
    responses_paging => responses_paging_on,
    erase_participant => erase_participant_on,
    erasure_racing_answers => erasure_racing_answers_on,
    refused_writes_change_nothing => refused_writes_change_nothing_on,
    web_logins => web_logins_on,
    lti_logins_and_platforms => lti_logins_and_platforms_on,
    rekey_session => rekey_session_on,
    xapi_outbox => xapi_outbox_on,
}

// ---- fixtures ----

fn conflict(rule: &str) -> StorageError {
    StorageError::Conflict(rule.to_string())
}

async fn org(store: &dyn Storage, name: &str) -> Org {
    store
        .create_org(name, &format!("hash-{name}"))
        .await
        .expect("create_org")
}

async fn bank(store: &dyn Storage, org: &Org, id: &str, fingerprint: &str) -> BankRecord {
    store
        .put_bank(org.id, id, fingerprint, 3, &format!("{{\"bank\":\"{id}\"}}"))
        .await
        .expect("put_bank")
        .0
}

fn campaign(org: &Org, id: &str, code: &str, bank: &BankRecord, created: i64) -> CampaignRecord {
    CampaignRecord {
        org: org.id,
        id: id.into(),
        code: code.into(),
        name: format!("Campaign {id}"),
        bank: bank.id.clone(),
        bank_version: bank.version,
        spec: format!("{{\"id\":\"{id}\"}}"),
        open: true,
        created,
    }
}

fn session(
    id: &str,
    org: &Org,
    campaign: Option<&str>,
    participant: Option<&str>,
    bank: &BankRecord,
) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        org: org.id,
        campaign: campaign.map(Into::into),
        bank: bank.id.clone(),
        bank_version: bank.version,
        design: "{\"design\":1}".into(),
        seed: u64::MAX as i64,
        participant: participant.map(Into::into),
        token_hash: format!("token-{id}"),
        created: 1_700_000_000_000,
        answered: 0,
        finished: false,
    }
}

fn answer(session: &str, position: i64, item: &str, code: i64) -> AnswerRecord {
    AnswerRecord {
        session: session.into(),
        position,
        item: item.into(),
        choice: Some(code + 1),
        response: None,
        code,
        created: 1_700_000_000_000 + position,
    }
}

async fn append(store: &dyn Storage, a: &AnswerRecord, result: Option<&str>) -> Appended {
    store.append_answer(a, result).await.expect("append_answer")
}

/// A store's org, a bank and a campaign with `sessions` sessions of participants p0, p1, ….
struct World {
    store: Arc<dyn Storage>,
    a: Org,
    bank: BankRecord,
    campaign: CampaignRecord,
}

async fn world(db: &TestDb) -> World {
    let store = db.open().await;
    let a = org(&*store, "a").await;
    let bank = bank(&*store, &a, "digcomp", "fp1").await;
    let campaign = campaign(&a, "c1", "JOIN-A1", &bank, 1_000);
    store.create_campaign(&campaign).await.expect("create_campaign");
    World {
        store,
        a,
        bank,
        campaign,
    }
}

// ---- migrations ----

async fn migrations_are_idempotent_on(db: &TestDb) {
    let first = db.open().await;
    let a = org(&*first, "a").await;
    let before = first.dump().await.unwrap();
    drop(first);
    let second = db.open().await;
    let third = db.open().await;
    assert_eq!(second.backend(), db.backend);
    assert_eq!(
        second.dump().await.unwrap(),
        before,
        "reopening changed the database"
    );
    assert_eq!(third.org_by_key("hash-a").await.unwrap(), Some(a));
    assert_eq!(third.org_count().await.unwrap(), 1);
    assert_eq!(schema_versions(db).await, every_version());
}

async fn concurrent_opens_migrate_once_on(db: &TestDb) {
    // Two servers starting together on one new database.
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { storage::open(&url).await.map(|_| ()) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("a concurrent open failed");
    }
    assert_eq!(schema_versions(db).await, every_version());
    let store = db.open().await;
    assert_eq!(store.org_count().await.unwrap(), 0);
}

async fn a_newer_schema_is_refused_on(db: &TestDb) {
    drop(db.open().await);
    raw_sql(
        db,
        "INSERT INTO schema_migrations (version, applied) VALUES (99, 0)",
    )
    .await;
    let error = storage::open(&db.url)
        .await
        .err()
        .expect("a newer schema must be refused");
    assert_eq!(
        error,
        StorageError::Setup(format!(
            "database schema version 99 is newer than this etalon ({})",
            storage::MIGRATIONS.len()
        ))
    );
}

/// Every migration's version, 1 … N.
fn every_version() -> Vec<i64> {
    (1..=storage::MIGRATIONS.len() as i64).collect()
}

/// The versions recorded in schema_migrations (read around the Storage trait).
async fn schema_versions(db: &TestDb) -> Vec<i64> {
    match db.backend {
        "sqlite" => {
            let path = db.url.strip_prefix("sqlite:").unwrap().to_string();
            tokio::task::spawn_blocking(move || {
                let c = rusqlite::Connection::open(path).unwrap();
                let mut st = c
                    .prepare("SELECT version FROM schema_migrations ORDER BY version")
                    .unwrap();
                st.query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<Vec<i64>, _>>()
                    .unwrap()
            })
            .await
            .unwrap()
        }
        _ => {
            let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let driver = tokio::spawn(conn);
            let rows = client
                .query("SELECT version FROM schema_migrations ORDER BY version", &[])
                .await
                .unwrap();
            drop(client);
            let _ = driver.await;
            rows.iter().map(|r| r.get(0)).collect()
        }
    }
}

/// Run SQL on the database directly.
async fn raw_sql(db: &TestDb, sql: &str) {
    match db.backend {
        "sqlite" => {
            let (path, sql) = (
                db.url.strip_prefix("sqlite:").unwrap().to_string(),
                sql.to_string(),
            );
            tokio::task::spawn_blocking(move || {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute_batch(&sql)
                    .unwrap();
            })
            .await
            .unwrap();
        }
        _ => {
            let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let driver = tokio::spawn(conn);
            client.batch_execute(sql).await.unwrap();
            drop(client);
            let _ = driver.await;
        }
    }
}

// ---- organisations ----

async fn orgs_on(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.org_count().await.unwrap(), 0);
    let a = store.create_org("acme", "hash-acme").await.unwrap();
    assert_eq!(a.name, "acme");
    assert_eq!(
        store.create_org("acme", "hash-other").await,
        Err(conflict("orgs.name"))
    );
    assert_eq!(
        store.create_org("other", "hash-acme").await,
        Err(conflict("orgs.key_hash"))
    );
    let b = store.create_org("beta", "hash-beta").await.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(store.org_by_key("hash-acme").await.unwrap(), Some(a.clone()));
    assert_eq!(store.org_by_key("hash-beta").await.unwrap(), Some(b));
    assert_eq!(store.org_by_key("hash-other").await.unwrap(), None);
    assert_eq!(store.org_count().await.unwrap(), 2);
}

async fn web_logins_on(db: &TestDb) {
    let store = db.open().await;
    let a = org(&*store, "a").await;
    let b = org(&*store, "b").await;
    let now = storage::now_ms();
    store.create_login("login-a", a.id, now + 60_000).await.unwrap();
    store.create_login("login-b", b.id, now + 60_000).await.unwrap();
    assert_eq!(store.org_by_login("login-a", now).await.unwrap(), Some(a.clone()));
    assert_eq!(store.org_by_login("login-b", now).await.unwrap(), Some(b));
    assert_eq!(store.org_by_login("login-c", now).await.unwrap(), None);
    // Expired at its expiry time + 1 ms.
    assert_eq!(store.org_by_login("login-a", now + 60_001).await.unwrap(), None);
    // A token is unique.
    assert!(matches!(
        store.create_login("login-a", a.id, now + 1).await,
        Err(StorageError::Conflict(_))
    ));
    // Signing out forgets it, and only it.
    store.delete_login("login-a").await.unwrap();
    assert_eq!(store.org_by_login("login-a", now).await.unwrap(), None);
    assert!(store.org_by_login("login-b", now).await.unwrap().is_some());
    // Creating a sign-in deletes the expired ones.
    store.create_login("old", a.id, now - 1).await.unwrap();
    store.create_login("new", a.id, now + 60_000).await.unwrap();
    let dump = store.dump().await.unwrap();
    assert!(!dump.contains("\"old\""), "expired sign-ins are deleted: {dump}");
    assert!(dump.contains("\"new\""));
}

async fn lti_logins_and_platforms_on(db: &TestDb) {
    let store = db.open().await;
    let a = org(&*store, "a").await;
    let platform = storage::LtiPlatform {
        org: a.id,
        issuer: "https://lms.example".into(),
        client_id: "c1".into(),
        deployment_ids: vec!["d1".into(), "d2".into()],
        auth_login_url: "https://lms.example/auth".into(),
        auth_token_url: "https://lms.example/token".into(),
        jwks_url: "https://lms.example/jwks".into(),
        created: 1,
    };
    store.put_lti_platform(&platform).await.unwrap();
    assert!(matches!(
        store.put_lti_platform(&platform).await,
        Err(StorageError::Conflict(_))
    ));
    let other = storage::LtiPlatform {
        client_id: "c2".into(),
        ..platform.clone()
    };
    store.put_lti_platform(&other).await.unwrap();
    assert_eq!(
        store.lti_platforms("https://lms.example").await.unwrap(),
        vec![platform, other]
    );
    assert!(
        store
            .lti_platforms("https://else.example")
            .await
            .unwrap()
            .is_empty()
    );
    // A login's state is taken once, and not after it expired.
    let now = storage::now_ms();
    let login = |state: &str, expires: i64| storage::LtiLogin {
        state: state.into(),
        nonce: format!("nonce-{state}"),
        issuer: "https://lms.example".into(),
        client_id: "c1".into(),
        expires,
    };
    store.create_lti_login(&login("s1", now + 60_000)).await.unwrap();
    store.create_lti_login(&login("s2", now + 60_000)).await.unwrap();
    assert_eq!(
        store.take_lti_login("s1", now).await.unwrap(),
        Some(login("s1", now + 60_000))
    );
    assert_eq!(store.take_lti_login("s1", now).await.unwrap(), None, "used once");
    assert_eq!(
        store.take_lti_login("s2", now + 60_001).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.take_lti_login("s2", now).await.unwrap(),
        None,
        "an expired take consumed it"
    );
    // A nonce is unique too.
    store.create_lti_login(&login("s3", now + 60_000)).await.unwrap();
    let mut same_nonce = login("s4", now + 60_000);
    same_nonce.nonce = "nonce-s3".into();
    assert!(matches!(
        store.create_lti_login(&same_nonce).await,
        Err(StorageError::Conflict(_))
    ));
    // Tool keys: added once per kid, oldest first.
    store.add_tool_key("k1", "pem-1").await.unwrap();
    store.add_tool_key("k1", "pem-other").await.unwrap();
    assert_eq!(
        store.tool_keys().await.unwrap(),
        vec![("k1".to_string(), "pem-1".to_string())]
    );
}

async fn rekey_session_on(db: &TestDb) {
    let w = world(db).await;
    let s = session("s1", &w.a, Some("c1"), Some("p1"), &w.bank);
    w.store.create_session(&s).await.unwrap();
    assert_eq!(
        w.store
            .rekey_session(w.a.id, "c1", "p1", "new-hash")
            .await
            .unwrap(),
        Some("s1".to_string())
    );
    assert_eq!(
        w.store.get_session("s1").await.unwrap().unwrap().token_hash,
        "new-hash"
    );
    assert_eq!(
        w.store.rekey_session(w.a.id, "c1", "p2", "x").await.unwrap(),
        None
    );
    assert_eq!(
        w.store.rekey_session(w.a.id, "c2", "p1", "x").await.unwrap(),
        None
    );
    assert_eq!(
        w.store.rekey_session(w.a.id + 1, "c1", "p1", "x").await.unwrap(),
        None,
        "another organisation"
    );
    assert_eq!(
        w.store.get_session("s1").await.unwrap().unwrap().token_hash,
        "new-hash"
    );
}

// ---- banks ----

async fn bank_versions_on(db: &TestDb) {
    let store = db.open().await;
    let a = org(&*store, "a").await;
    let b = org(&*store, "b").await;
    let (v1, new) = store.put_bank(a.id, "digcomp", "fp1", 10, "body1").await.unwrap();
    assert!(new);
    assert_eq!(
        (v1.id.as_str(), v1.version, v1.fingerprint.as_str(), v1.items),
        ("digcomp", 1, "fp1", 10)
    );
    assert_eq!(v1.body, "body1");
    // The same bank again: the same version, not stored twice.
    let (again, new) = store.put_bank(a.id, "digcomp", "fp1", 10, "body1").await.unwrap();
    assert!(!new);
    assert_eq!(again, v1);
    let (v2, new) = store.put_bank(a.id, "digcomp", "fp2", 12, "body2").await.unwrap();
    assert!(new);
    assert_eq!((v2.version, v2.items, v2.body.as_str()), (2, 12, "body2"));
    // Compared with the latest version only: going back to fp1 is version 3.
    let (v3, new) = store.put_bank(a.id, "digcomp", "fp1", 10, "body1").await.unwrap();
    assert!(new);
    assert_eq!(v3.version, 3);
    // Versions are per organisation.
    let (b1, new) = store.put_bank(b.id, "digcomp", "fp2", 12, "body2").await.unwrap();
    assert!(new);
    assert_eq!(b1.version, 1);

    assert_eq!(
        store.get_bank(a.id, "digcomp", None).await.unwrap(),
        Some(v3.clone())
    );
    assert_eq!(
        store.get_bank(a.id, "digcomp", Some(1)).await.unwrap(),
        Some(v1.clone())
    );
    assert_eq!(store.get_bank(a.id, "digcomp", Some(2)).await.unwrap(), Some(v2));
    assert_eq!(store.get_bank(a.id, "digcomp", Some(4)).await.unwrap(), None);
    assert_eq!(store.get_bank(a.id, "nope", None).await.unwrap(), None);

    let alpha = store.put_bank(a.id, "alpha", "fpa", 5, "bodya").await.unwrap().0;
    let listed = store.list_banks(a.id).await.unwrap();
    let empty_body = |r: &BankRecord| BankRecord {
        body: String::new(),
        ..r.clone()
    };
    assert_eq!(
        listed,
        vec![empty_body(&alpha), empty_body(&v3)],
        "latest of each bank, by id, no bodies"
    );
    assert_eq!(store.list_banks(b.id).await.unwrap(), vec![empty_body(&b1)]);
    assert_eq!(store.list_banks(b.id + a.id + 100).await.unwrap(), vec![]);
}

async fn concurrent_bank_puts_on(db: &TestDb) {
    let store = db.open().await;
    let a = org(&*store, "a").await;
    // The same bank 12 times at once: one new version.
    let puts: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.put_bank(a.id, "same", "fp", 1, "body").await })
        })
        .collect();
    let mut created = 0;
    for put in puts {
        let (record, new) = put.await.unwrap().expect("put_bank");
        assert_eq!(record.version, 1);
        created += usize::from(new);
    }
    assert_eq!(created, 1);
    // 12 different banks under one id at once: versions 1..=12, each once.
    let puts: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put_bank(a.id, "many", &format!("fp{i}"), 1, "body").await })
        })
        .collect();
    let mut versions = Vec::new();
    for put in puts {
        let (record, new) = put.await.unwrap().expect("put_bank");
        assert!(new);
        versions.push(record.version);
    }
    versions.sort();
    assert_eq!(versions, (1..=12).collect::<Vec<i64>>());
}

// ---- campaigns ----

async fn campaigns_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    let c1 = w.campaign.clone();
    assert_eq!(store.get_campaign(w.a.id, "c1").await.unwrap(), Some(c1.clone()));
    assert_eq!(store.campaign_by_code("JOIN-A1").await.unwrap(), Some(c1.clone()));
    assert_eq!(store.campaign_by_code("JOIN-XX").await.unwrap(), None);
    // Same id in the same organisation.
    let dup = CampaignRecord {
        code: "JOIN-A9".into(),
        ..c1.clone()
    };
    assert_eq!(
        store.create_campaign(&dup).await,
        Err(conflict("campaigns.org, campaigns.id"))
    );
    // Same code anywhere.
    let b = org(store, "b").await;
    let b_bank = bank(store, &b, "digcomp", "fpb").await;
    let b_c1 = campaign(&b, "c1", "JOIN-A1", &b_bank, 10);
    assert_eq!(
        store.create_campaign(&b_c1).await,
        Err(conflict("campaigns.code"))
    );
    // The same id in another organisation is another campaign.
    let b_c1 = CampaignRecord {
        code: "JOIN-B1".into(),
        ..b_c1
    };
    store.create_campaign(&b_c1).await.unwrap();
    assert_eq!(store.get_campaign(b.id, "c1").await.unwrap(), Some(b_c1.clone()));
    assert_eq!(store.get_campaign(w.a.id, "c1").await.unwrap(), Some(c1.clone()));
    // Oldest first.
    let c2 = campaign(&w.a, "c2", "JOIN-A2", &w.bank, 500);
    store.create_campaign(&c2).await.unwrap();
    assert_eq!(
        store.list_campaigns(w.a.id).await.unwrap(),
        vec![c2.clone(), c1.clone()]
    );
    assert_eq!(store.list_campaigns(b.id).await.unwrap(), vec![b_c1]);
    // Open and close.
    assert!(store.set_campaign_open(w.a.id, "c1", false).await.unwrap());
    let closed = store.get_campaign(w.a.id, "c1").await.unwrap().unwrap();
    assert!(!closed.open);
    assert_eq!(store.campaign_by_code("JOIN-A1").await.unwrap(), Some(closed));
    assert!(store.set_campaign_open(w.a.id, "c1", true).await.unwrap());
    assert!(store.get_campaign(w.a.id, "c1").await.unwrap().unwrap().open);
    assert!(!store.set_campaign_open(w.a.id, "nope", false).await.unwrap());
    // A campaign on a bank version that does not exist is refused (the caller checks first).
    let ghost = campaign(
        &w.a,
        "c3",
        "JOIN-A3",
        &BankRecord {
            version: 9,
            ..w.bank.clone()
        },
        600,
    );
    assert!(store.create_campaign(&ghost).await.is_err());
    assert_eq!(store.get_campaign(w.a.id, "c3").await.unwrap(), None);
}

async fn org_scoping_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    let b = org(store, "b").await;
    let s = session("sa", &w.a, Some("c1"), Some("p1"), &w.bank);
    store.create_session(&s).await.unwrap();
    assert_eq!(
        append(store, &answer("sa", 1, "i1", 1), Some("line-a")).await,
        Appended::Recorded
    );
    // Organisation b sees none of a's.
    assert_eq!(store.get_campaign(b.id, "c1").await.unwrap(), None);
    assert_eq!(store.list_campaigns(b.id).await.unwrap(), vec![]);
    assert!(!store.set_campaign_open(b.id, "c1", false).await.unwrap());
    assert!(store.get_campaign(w.a.id, "c1").await.unwrap().unwrap().open);
    assert_eq!(
        store.participation(b.id, "c1").await.unwrap(),
        Participation {
            started: 0,
            finished: 0
        }
    );
    assert_eq!(store.results(b.id, "c1").await.unwrap(), Vec::<String>::new());
    assert_eq!(store.responses(b.id, "digcomp", None, 100).await.unwrap(), vec![]);
    assert_eq!(store.get_bank(b.id, "digcomp", None).await.unwrap(), None);
    assert_eq!(store.list_banks(b.id).await.unwrap(), vec![]);
    assert_eq!(store.erase_participant(b.id, "p1").await.unwrap(), 0);
    // …and a's are all there.
    assert_eq!(
        store.participation(w.a.id, "c1").await.unwrap(),
        Participation {
            started: 1,
            finished: 1
        }
    );
    assert_eq!(
        store.results(w.a.id, "c1").await.unwrap(),
        vec!["line-a".to_string()]
    );
    assert_eq!(
        store.responses(w.a.id, "digcomp", None, 100).await.unwrap().len(),
        1
    );
    assert!(store.get_session("sa").await.unwrap().is_some());
}

// ---- sessions and answers ----

async fn sessions_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    let c2 = campaign(&w.a, "c2", "JOIN-A2", &w.bank, 2_000);
    store.create_campaign(&c2).await.unwrap();
    let s1 = session("s1", &w.a, Some("c1"), Some("p1"), &w.bank);
    store.create_session(&s1).await.unwrap();
    assert_eq!(store.get_session("s1").await.unwrap(), Some(s1.clone()));
    // One session per participant and campaign.
    let again = session("s2", &w.a, Some("c1"), Some("p1"), &w.bank);
    assert_eq!(
        store.create_session(&again).await,
        Err(conflict("sessions.org, sessions.campaign, sessions.participant"))
    );
    assert_eq!(store.get_session("s2").await.unwrap(), None);
    // Another campaign, or no participant, or no campaign: no such rule.
    store
        .create_session(&session("s2", &w.a, Some("c2"), Some("p1"), &w.bank))
        .await
        .unwrap();
    store
        .create_session(&session("s3", &w.a, Some("c1"), None, &w.bank))
        .await
        .unwrap();
    store
        .create_session(&session("s4", &w.a, Some("c1"), None, &w.bank))
        .await
        .unwrap();
    store
        .create_session(&session("s5", &w.a, None, Some("p1"), &w.bank))
        .await
        .unwrap();
    store
        .create_session(&session("s6", &w.a, None, Some("p1"), &w.bank))
        .await
        .unwrap();
    // Ids are unique.
    assert_eq!(
        store
            .create_session(&session("s1", &w.a, Some("c2"), Some("p9"), &w.bank))
            .await,
        Err(conflict("sessions.id"))
    );
    // Seeds are u64 bit for bit, including the ones that are negative as i64.
    for (id, seed) in [("min", i64::MIN), ("max", i64::MAX), ("neg", -2)] {
        let s = SessionRecord {
            seed,
            ..session(id, &w.a, None, None, &w.bank)
        };
        store.create_session(&s).await.unwrap();
        assert_eq!(store.get_session(id).await.unwrap().unwrap().seed, seed);
    }
    assert_eq!(
        store.get_session("s1").await.unwrap().unwrap().seed as u64,
        u64::MAX
    );
    // Answered and finished.
    assert_eq!(
        append(store, &answer("s1", 1, "i1", 1), None).await,
        Appended::Recorded
    );
    assert_eq!(
        append(store, &answer("s1", 2, "i2", 0), None).await,
        Appended::Recorded
    );
    let read = store.get_session("s1").await.unwrap().unwrap();
    assert_eq!((read.answered, read.finished), (2, false));
    assert_eq!(
        read,
        SessionRecord {
            answered: 2,
            ..s1.clone()
        }
    );
    assert_eq!(
        append(store, &answer("s1", 3, "i3", 1), Some("result-s1")).await,
        Appended::Recorded
    );
    let read = store.get_session("s1").await.unwrap().unwrap();
    assert_eq!((read.answered, read.finished), (3, true));
    assert_eq!(
        store.participation(w.a.id, "c1").await.unwrap(),
        Participation {
            started: 3,
            finished: 1
        }
    );
    assert_eq!(
        store.participation(w.a.id, "c2").await.unwrap(),
        Participation {
            started: 1,
            finished: 0
        }
    );
    assert_eq!(
        store.participation(w.a.id, "c9").await.unwrap(),
        Participation {
            started: 0,
            finished: 0
        }
    );
    assert_eq!(store.get_session("nope").await.unwrap(), None);
}

async fn answers_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    store
        .create_session(&session("s1", &w.a, Some("c1"), Some("p1"), &w.bank))
        .await
        .unwrap();
    let a1 = AnswerRecord {
        choice: None,
        response: Some(2),
        ..answer("s1", 1, "i1", 2)
    };
    assert_eq!(append(store, &a1, None).await, Appended::Recorded);
    assert_eq!(store.answers("s1").await.unwrap(), vec![a1.clone()]);
    // A second answer at the same position: the stored one comes back, nothing is written.
    let other = answer("s1", 1, "i7", 0);
    assert_eq!(append(store, &other, None).await, Appended::Exists(a1.clone()));
    assert_eq!(
        append(store, &other, Some("result")).await,
        Appended::Exists(a1.clone())
    );
    assert_eq!(store.answers("s1").await.unwrap(), vec![a1.clone()]);
    assert_eq!(store.result("s1").await.unwrap(), None);
    // No session.
    assert_eq!(
        append(store, &answer("ghost", 1, "i1", 1), None).await,
        Appended::NoSession
    );
    assert_eq!(
        append(store, &answer("ghost", 1, "i1", 1), Some("r")).await,
        Appended::NoSession
    );
    assert_eq!(store.answers("ghost").await.unwrap(), vec![]);
    assert_eq!(store.result("ghost").await.unwrap(), None);
    // In order, whatever order they were appended in.
    let a3 = answer("s1", 3, "i3", 1);
    let a2 = answer("s1", 2, "i2", 0);
    assert_eq!(append(store, &a3, None).await, Appended::Recorded);
    assert_eq!(append(store, &a2, None).await, Appended::Recorded);
    assert_eq!(store.answers("s1").await.unwrap(), vec![a1, a2, a3]);
    assert_eq!(store.answers("nope").await.unwrap(), vec![]);
}

async fn the_result_is_atomic_with_the_last_answer_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    store
        .create_session(&session("sz", &w.a, Some("c1"), Some("pz"), &w.bank))
        .await
        .unwrap();
    store
        .create_session(&session("sa", &w.a, Some("c1"), Some("pa"), &w.bank))
        .await
        .unwrap();
    store
        .create_session(&session("free", &w.a, None, None, &w.bank))
        .await
        .unwrap();
    assert_eq!(
        append(store, &answer("sz", 1, "i1", 1), None).await,
        Appended::Recorded
    );
    assert_eq!(store.result("sz").await.unwrap(), None);
    // sz finishes first (its last answer is the earlier one), then sa.
    let last_z = AnswerRecord {
        created: 1_800_000_000_000,
        ..answer("sz", 2, "i2", 1)
    };
    let last_a = AnswerRecord {
        created: 1_800_000_000_001,
        ..answer("sa", 1, "i1", 0)
    };
    assert_eq!(
        append(store, &last_z, Some("{\"result\":\"z\"}")).await,
        Appended::Recorded
    );
    assert_eq!(
        store.result("sz").await.unwrap().as_deref(),
        Some("{\"result\":\"z\"}")
    );
    assert_eq!(
        append(store, &last_a, Some("{\"result\":\"a\"}")).await,
        Appended::Recorded
    );
    assert_eq!(
        append(store, &answer("free", 1, "i1", 0), Some("free-line")).await,
        Appended::Recorded
    );
    assert_eq!(store.result("free").await.unwrap().as_deref(), Some("free-line"));
    // In the order they finished (sz before sa), only the campaign's.
    assert_eq!(
        store.results(w.a.id, "c1").await.unwrap(),
        vec!["{\"result\":\"z\"}".to_string(), "{\"result\":\"a\"}".to_string()]
    );
    assert_eq!(
        store.participation(w.a.id, "c1").await.unwrap(),
        Participation {
            started: 2,
            finished: 2
        }
    );
    // A second result for a finished session is refused, and takes its answer with it.
    assert_eq!(
        store
            .append_answer(&answer("sz", 3, "i3", 1), Some("again"))
            .await,
        Err(conflict("results.session"))
    );
    assert_eq!(store.answers("sz").await.unwrap().len(), 2);
    assert_eq!(
        store.result("sz").await.unwrap().as_deref(),
        Some("{\"result\":\"z\"}")
    );
    assert_eq!(store.get_session("sz").await.unwrap().unwrap().answered, 2);
}

async fn concurrent_appends_record_one_on(db: &TestDb) {
    let w = world(db).await;
    w.store
        .create_session(&session("race", &w.a, Some("c1"), Some("p1"), &w.bank))
        .await
        .unwrap();
    // Two stores on one database: two server processes.
    let other = db.open().await;
    let stores = [w.store.clone(), other];
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                let a = answer("race", 1, &format!("item-{i}"), (i % 3) as i64);
                let outcome = store.append_answer(&a, Some(&format!("result-{i}"))).await;
                (a, outcome)
            })
        })
        .collect();
    let mut recorded = Vec::new();
    let mut existing = Vec::new();
    for task in tasks {
        let (a, outcome) = task.await.unwrap();
        match outcome.expect("append_answer") {
            Appended::Recorded => recorded.push(a),
            Appended::Exists(stored) => existing.push(stored),
            Appended::NoSession => panic!("the session exists"),
        }
    }
    assert_eq!(
        recorded.len(),
        1,
        "exactly one of 50 concurrent appends is recorded"
    );
    assert_eq!(existing.len(), 49);
    let winner = recorded.pop().unwrap();
    assert!(
        existing.iter().all(|e| *e == winner),
        "every refused append returns the recorded answer"
    );
    assert_eq!(w.store.answers("race").await.unwrap(), vec![winner.clone()]);
    let i = winner.item.strip_prefix("item-").unwrap();
    assert_eq!(w.store.result("race").await.unwrap(), Some(format!("result-{i}")));
    assert_eq!(
        w.store.results(w.a.id, "c1").await.unwrap(),
        vec![format!("result-{i}")]
    );
}

// ---- exports ----

async fn responses_paging_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    let v2 = bank(store, &w.a, "digcomp", "fp2").await;
    let alpha = bank(store, &w.a, "alpha", "fpa").await;
    let b = org(store, "b").await;
    let b_bank = bank(store, &b, "digcomp", "fpb").await;
    // Sessions on both versions of digcomp ("Sb" < "sa" byte-wise), one on another bank, one of b's.
    store
        .create_session(&session("sa", &w.a, None, None, &v2))
        .await
        .unwrap();
    store
        .create_session(&session("Sb", &w.a, None, None, &w.bank))
        .await
        .unwrap();
    store
        .create_session(&session("m", &w.a, None, None, &alpha))
        .await
        .unwrap();
    store
        .create_session(&session("bb", &b, None, None, &b_bank))
        .await
        .unwrap();
    store
        .create_session(&session("empty", &w.a, None, None, &w.bank))
        .await
        .unwrap();
    for a in [
        answer("sa", 2, "i4", 1),
        answer("sa", 1, "i3", 2),
        answer("Sb", 1, "i1", 1),
        answer("Sb", 2, "i2", 0),
        answer("Sb", 3, "i5", 1),
        answer("m", 1, "x1", 1),
        answer("bb", 1, "y1", 1),
    ] {
        assert_eq!(append(store, &a, None).await, Appended::Recorded);
    }
    let row = |person: &str, position: i64, item: &str, code: i64| ResponseRow {
        person: person.into(),
        item: item.into(),
        code,
        position,
    };
    let all = vec![
        row("Sb", 1, "i1", 1),
        row("Sb", 2, "i2", 0),
        row("Sb", 3, "i5", 1),
        row("sa", 1, "i3", 2),
        row("sa", 2, "i4", 1),
    ];
    assert_eq!(store.responses(w.a.id, "digcomp", None, 100).await.unwrap(), all);
    // Pages of 2, each after the last row of the one before.
    assert_eq!(
        store.responses(w.a.id, "digcomp", None, 2).await.unwrap(),
        all[..2]
    );
    assert_eq!(
        store
            .responses(w.a.id, "digcomp", Some(("Sb".into(), 2)), 2)
            .await
            .unwrap(),
        all[2..4]
    );
    assert_eq!(
        store
            .responses(w.a.id, "digcomp", Some(("sa".into(), 1)), 2)
            .await
            .unwrap(),
        all[4..]
    );
    assert_eq!(
        store
            .responses(w.a.id, "digcomp", Some(("sa".into(), 2)), 2)
            .await
            .unwrap(),
        vec![]
    );
    // Walking with pages of 1 gives the whole list.
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .responses(w.a.id, "digcomp", after.clone(), 1)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.person.clone(), last.position));
        walked.extend(page);
        assert!(walked.len() <= all.len(), "paging does not end");
    }
    assert_eq!(walked, all);
    assert_eq!(
        store.responses(w.a.id, "alpha", None, 100).await.unwrap(),
        vec![row("m", 1, "x1", 1)]
    );
    assert_eq!(
        store.responses(b.id, "digcomp", None, 100).await.unwrap(),
        vec![row("bb", 1, "y1", 1)]
    );
    assert_eq!(store.responses(w.a.id, "nope", None, 100).await.unwrap(), vec![]);
}

// ---- erasure ----

async fn erase_participant_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    let c2 = campaign(&w.a, "c2", "JOIN-A2", &w.bank, 2_000);
    store.create_campaign(&c2).await.unwrap();
    let b = org(store, "b").await;
    let b_bank = bank(store, &b, "digcomp", "fpb").await;
    // p1 has a finished session in c1, a started one in c2 and one outside campaigns; p2 one in c1;
    // organisation b has a participant called p1 too.
    for s in [
        session("p1-c1", &w.a, Some("c1"), Some("p1"), &w.bank),
        session("p1-c2", &w.a, Some("c2"), Some("p1"), &w.bank),
        session("p1-free", &w.a, None, Some("p1"), &w.bank),
        session("p2-c1", &w.a, Some("c1"), Some("p2"), &w.bank),
        session("b-p1", &b, None, Some("p1"), &b_bank),
    ] {
        store.create_session(&s).await.unwrap();
    }
    assert_eq!(
        append(store, &answer("p1-c1", 1, "i1", 1), Some("line-p1")).await,
        Appended::Recorded
    );
    assert_eq!(
        append(store, &answer("p1-c2", 1, "i1", 1), None).await,
        Appended::Recorded
    );
    assert_eq!(
        append(store, &answer("p2-c1", 1, "i1", 0), Some("line-p2")).await,
        Appended::Recorded
    );
    assert_eq!(
        append(store, &answer("b-p1", 1, "i1", 0), Some("line-b")).await,
        Appended::Recorded
    );

    assert_eq!(store.erase_participant(w.a.id, "p1").await.unwrap(), 3);
    for id in ["p1-c1", "p1-c2", "p1-free"] {
        assert_eq!(store.get_session(id).await.unwrap(), None, "{id}");
        assert_eq!(store.answers(id).await.unwrap(), vec![], "{id}");
        assert_eq!(store.result(id).await.unwrap(), None, "{id}");
    }
    let dump = store.dump().await.unwrap();
    assert!(
        !dump.contains("p1-c") && !dump.contains("line-p1") && !dump.contains("p1-free"),
        "{dump}"
    );
    // The others are untouched.
    assert_eq!(
        store.results(w.a.id, "c1").await.unwrap(),
        vec!["line-p2".to_string()]
    );
    assert_eq!(
        store.participation(w.a.id, "c1").await.unwrap(),
        Participation {
            started: 1,
            finished: 1
        }
    );
    assert_eq!(
        store.participation(w.a.id, "c2").await.unwrap(),
        Participation {
            started: 0,
            finished: 0
        }
    );
    assert_eq!(store.answers("p2-c1").await.unwrap().len(), 1);
    assert_eq!(store.get_session("b-p1").await.unwrap().unwrap().answered, 1);
    assert_eq!(store.result("b-p1").await.unwrap().as_deref(), Some("line-b"));
    // Once erased, nothing more to erase; an answer to an erased session is not stored.
    assert_eq!(store.erase_participant(w.a.id, "p1").await.unwrap(), 0);
    assert_eq!(
        append(store, &answer("p1-c2", 2, "i2", 1), Some("late")).await,
        Appended::NoSession
    );
    assert_eq!(store.result("p1-c2").await.unwrap(), None);
    // The participant may take the campaign again.
    store
        .create_session(&session("p1-c1-again", &w.a, Some("c1"), Some("p1"), &w.bank))
        .await
        .unwrap();
}

async fn erasure_racing_answers_on(db: &TestDb) {
    let w = world(db).await;
    let ids: Vec<String> = (0..20).map(|i| format!("s{i:02}")).collect();
    for id in &ids {
        w.store
            .create_session(&session(id, &w.a, None, Some("p1"), &w.bank))
            .await
            .unwrap();
    }
    let other = db.open().await;
    // Answers to every session (from two stores) while the participant is erased: each answer is
    // either recorded (and then erased) or finds no session, and the erasure takes every session.
    let appends: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let store = if i % 2 == 0 {
                w.store.clone()
            } else {
                other.clone()
            };
            let id = id.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for position in 1..=3 {
                    let result = (position == 3).then_some("done");
                    outcomes.push(store.append_answer(&answer(&id, position, "i", 1), result).await);
                }
                outcomes
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let erased = w
        .store
        .erase_participant(w.a.id, "p1")
        .await
        .expect("erase_participant");
    assert_eq!(erased, 20);
    for task in appends {
        for outcome in task.await.unwrap() {
            let outcome = outcome.expect("append_answer racing an erasure");
            assert!(
                matches!(outcome, Appended::Recorded | Appended::NoSession),
                "{outcome:?}"
            );
        }
    }
    for id in &ids {
        assert_eq!(w.store.get_session(id).await.unwrap(), None);
        assert_eq!(w.store.answers(id).await.unwrap(), vec![]);
        assert_eq!(w.store.result(id).await.unwrap(), None);
    }
    assert_eq!(w.store.erase_participant(w.a.id, "p1").await.unwrap(), 0);
}

// ---- refused writes ----

async fn refused_writes_change_nothing_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    store
        .create_session(&session("s1", &w.a, Some("c1"), Some("p1"), &w.bank))
        .await
        .unwrap();
    assert_eq!(
        append(store, &answer("s1", 1, "i1", 1), Some("line-1")).await,
        Appended::Recorded
    );
    let before = store.dump().await.unwrap();
    for needle in ["digcomp", "JOIN-A1", "s1", "line-1", "hash-a"] {
        assert!(before.contains(needle), "the dump lacks {needle}:\n{before}");
    }

    assert!(matches!(
        store.create_org("a", "hash-new").await,
        Err(StorageError::Conflict(_))
    ));
    let dup_code = CampaignRecord {
        id: "c9".into(),
        ..w.campaign.clone()
    };
    assert!(matches!(
        store.create_campaign(&dup_code).await,
        Err(StorageError::Conflict(_))
    ));
    let dup_participant = session("s2", &w.a, Some("c1"), Some("p1"), &w.bank);
    assert!(matches!(
        store.create_session(&dup_participant).await,
        Err(StorageError::Conflict(_))
    ));
    assert!(matches!(
        append(store, &answer("s1", 1, "i9", 0), None).await,
        Appended::Exists(_)
    ));
    assert_eq!(
        append(store, &answer("ghost", 1, "i1", 0), Some("x")).await,
        Appended::NoSession
    );
    assert!(matches!(
        store
            .append_answer(&answer("s1", 2, "i2", 0), Some("line-2"))
            .await,
        Err(StorageError::Conflict(_))
    ));
    assert!(
        !store
            .put_bank(w.a.id, "digcomp", "fp1", 3, "other body")
            .await
            .unwrap()
            .1
    );
    assert!(!store.set_campaign_open(w.a.id, "nope", false).await.unwrap());
    assert_eq!(store.erase_participant(w.a.id, "nobody").await.unwrap(), 0);
    assert_eq!(
        store.dump().await.unwrap(),
        before,
        "a refused write changed the database"
    );

    // The dump does see a write.
    assert!(store.set_campaign_open(w.a.id, "c1", false).await.unwrap());
    assert_ne!(store.dump().await.unwrap(), before);
}

// ---- xAPI outbox ----

async fn xapi_outbox_on(db: &TestDb) {
    let w = world(db).await;
    let store = &*w.store;
    let b = org(store, "b").await;
    let b_bank = bank(store, &b, "digcomp", "fp1").await;
    assert_eq!(store.xapi_lrs(w.a.id).await.unwrap(), None);
    let mut lrs = XapiLrs {
        endpoint: "https://lrs.example/old/".into(),
        username: "u".into(),
        password: "p".into(),
        homepage: "https://etalon.example".into(),
        created: 5,
    };
    store.put_xapi_lrs(w.a.id, Some(&lrs)).await.unwrap();
    lrs.endpoint = "https://lrs.example/xapi/".into();
    store.put_xapi_lrs(w.a.id, Some(&lrs)).await.unwrap();
    assert_eq!(
        store.xapi_lrs(w.a.id).await.unwrap().as_ref(),
        Some(&lrs),
        "replaced"
    );
    assert_eq!(store.xapi_lrs(b.id).await.unwrap(), None, "per organisation");
    // Sessions get a cursor when their organisation has an LRS.
    store
        .create_session(&session("s1", &w.a, Some("c1"), Some("p1"), &w.bank))
        .await
        .unwrap();
    store
        .create_session(&session("s2", &b, None, Some("p1"), &b_bank))
        .await
        .unwrap();
    let claim = |now: i64| async move {
        store
            .claim_due_statements(now, now + 100, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|j| (j.session, j.org, j.sent, j.attempts))
            .collect::<Vec<_>>()
    };
    assert_eq!(claim(100).await, [], "nothing to send before an answer");
    append(store, &answer("s1", 1, "i1", 1), None).await;
    append(store, &answer("s1", 2, "i2", 0), None).await;
    append(store, &answer("s2", 1, "i1", 1), None).await;
    assert_eq!(claim(100).await, [("s1".to_string(), w.a.id, 0, 0)]);
    assert_eq!(claim(150).await, [], "leased");
    store
        .statements_failed("s1", 300, "the LRS answered 503")
        .await
        .unwrap();
    let summary = store.statements_summary(w.a.id).await.unwrap();
    assert_eq!(
        summary.failing,
        [("s1".to_string(), 1, "the LRS answered 503".to_string())]
    );
    assert_eq!(claim(250).await, [], "not before its retry time");
    assert_eq!(claim(300).await, [("s1".to_string(), w.a.id, 0, 1)]);
    store.statements_sent("s1", 2, false).await.unwrap();
    assert_eq!(claim(400).await, [], "sent up to the last answer");
    append(store, &answer("s1", 3, "i3", 1), Some("{\"score\":1}")).await;
    assert_eq!(
        claim(500).await,
        [("s1".to_string(), w.a.id, 2, 0)],
        "attempts reset by a success"
    );
    store.statements_sent("s1", 3, true).await.unwrap();
    assert_eq!(claim(10_000).await, [], "completed: never again");
    // A late writer whose lease ran out cannot move the cursor back.
    store.statements_sent("s1", 1, false).await.unwrap();
    assert_eq!(claim(10_000).await, [], "still completed, still at 3");
    let summary = store.statements_summary(w.a.id).await.unwrap();
    assert_eq!(
        (
            summary.sessions_completed,
            summary.sessions_open,
            summary.answers_sent
        ),
        (1, 0, 3)
    );
    assert!(summary.failing.is_empty());
    assert_eq!(store.statements_summary(b.id).await.unwrap(), Default::default());
    // Removed: nothing is claimed and new sessions get no cursor; the cursors stay for the next LRS.
    store
        .create_session(&session("s3", &w.a, Some("c1"), Some("p3"), &w.bank))
        .await
        .unwrap();
    store.put_xapi_lrs(w.a.id, None).await.unwrap();
    store
        .create_session(&session("s4", &w.a, Some("c1"), Some("p4"), &w.bank))
        .await
        .unwrap();
    append(store, &answer("s3", 1, "i1", 1), None).await;
    append(store, &answer("s4", 1, "i1", 1), None).await;
    assert_eq!(claim(20_000).await, []);
    store.put_xapi_lrs(w.a.id, Some(&lrs)).await.unwrap();
    assert_eq!(claim(20_000).await, [("s3".to_string(), w.a.id, 0, 0)]);
    // Erasure takes the cursor with the session.
    assert_eq!(store.erase_participant(w.a.id, "p3").await.unwrap(), 1);
    assert_eq!(store.statements_summary(w.a.id).await.unwrap().sessions_open, 0);
}
