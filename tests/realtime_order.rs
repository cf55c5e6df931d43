//! A socket's events take effect in the order it sent them, though each is handled on
//! its own task: a `joinChat` waiting for the store must not finish after the
//! `leaveChat` sent right behind it, and typing indicators must not arrive swapped.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::sio::RawSocket;
use common::{unique_email, TestApp};
use serde_json::json;

async fn two_users_and_chats(app: &TestApp) -> (String, String, Vec<String>) {
    let (_, viewer) = app.user_with_token(&unique_email("order-viewer")).await;
    let (_, sender) = app.user_with_token(&unique_email("order-sender")).await;
    let sender_id = app.get("/api/v1/me", Some(&sender)).await.1["_id"].as_str().unwrap().to_string();
    let (_, third) = app.user_with_token(&unique_email("order-third")).await;
    let third_id = app.get("/api/v1/me", Some(&third)).await.1["_id"].as_str().unwrap().to_string();
    let mut chats = Vec::new();
    for other in [&sender_id, &third_id] {
        let (status, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": other }), Some(&viewer)).await;
        assert_eq!(status, 201, "{chat}");
        chats.push(chat["chatId"].as_str().unwrap().to_string());
    }
    (viewer, sender, chats)
}

async fn join_chat(sockets: [&mut RawSocket; 2], chat: &str) {
    for s in sockets {
        let ack = s.emit_with_ack("joinChat", &json!(chat), Duration::from_secs(5)).await;
        assert_eq!(ack.map(|a| a["ok"].clone()), Some(json!(true)));
    }
}

/// Join then leave at once, 50 times: the socket must end outside the room every time,
/// so the next message is not marked seen by a reader who has left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_then_leave_at_once_leaves_the_room() {
    let app = TestApp::spawn().await;
    let (viewer, sender, chats) = two_users_and_chats(&app).await;
    let (chat, other_chat) = (&chats[0], &chats[1]);
    let mut socket = RawSocket::connect(&app.base, &viewer).await;
    let mut falsely_seen = 0;
    for round in 0..50 {
        socket.emit("joinChat", &json!(chat)).await;
        socket.emit("leaveChat", &json!(chat)).await;
        // Answered only once every earlier event of this socket is done.
        let ack = socket.emit_with_ack("joinChat", &json!(other_chat), Duration::from_secs(5)).await;
        assert_eq!(ack.as_ref().map(|a| a["ok"].clone()), Some(json!(true)), "round {round}: {ack:?}");
        socket.emit("leaveChat", &json!(other_chat)).await;
        let (status, sent) =
            app.post("/api/v1/message", json!({ "chatId": chat, "text": format!("m{round}") }), Some(&sender)).await;
        assert_eq!(status, 201, "{sent}");
        falsely_seen += (sent["message"]["seen"] == true) as usize;
    }
    assert_eq!(falsely_seen, 0, "messages stored as seen after the reader left, out of 50");
}

/// 3,000 typing/stopTyping pairs from one socket, in one burst, reach the other member in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_indicators_arrive_in_the_order_they_were_sent() {
    let app = TestApp::spawn().await;
    let (viewer, sender, chats) = two_users_and_chats(&app).await;
    let chat = &chats[0];
    let mut typist = RawSocket::connect(&app.base, &sender).await;
    let mut watcher = RawSocket::connect(&app.base, &viewer).await;
    join_chat([&mut typist, &mut watcher], chat).await;
    const PAIRS: usize = 3000;
    for _ in 0..PAIRS {
        typist.emit("typing", &json!({ "chatId": chat })).await;
        typist.emit("stopTyping", &json!({ "chatId": chat })).await;
    }
    let mut received = Vec::new();
    while received.len() < 2 * PAIRS {
        match watcher.next_event(Duration::from_secs(10)).await {
            Some((name, _)) if name.starts_with("user") => received.push(name),
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(received.len(), 2 * PAIRS, "every indicator relayed");
    let swapped =
        received.chunks(2).filter(|pair| pair != &["userTyping".to_string(), "userStoppedTyping".to_string()]).count();
    assert_eq!(swapped, 0, "pairs relayed out of order, of {PAIRS}");
}

/// A member who stops reading fills the send buffer the server keeps for them. The
/// typist's events must not queue behind that: after one bounded wait, indicators to the
/// stalled member are dropped at once (and counted), and the typist's next event is
/// answered. Waiting for each of them instead would take hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_stops_reading_does_not_stall_the_typist() {
    let app = TestApp::spawn().await;
    let (viewer, sender, chats) = two_users_and_chats(&app).await;
    let chat = &chats[0];
    let mut typist = RawSocket::connect(&app.base, &sender).await;
    let mut stalled = RawSocket::connect_with_receive_buffer(&app.base, &viewer, 4096).await;
    join_chat([&mut typist, &mut stalled], chat).await;
    // Enough to fill the kernel's buffers for the stalled connection (megabytes) and
    // then socketioxide's 128 packets.
    const INDICATORS: usize = 60_000;
    for _ in 0..INDICATORS {
        typist.emit("typing", &json!({ "chatId": chat })).await;
    }
    let ack = typist.emit_with_ack("joinChat", &json!(chat), Duration::from_secs(60)).await;
    assert_eq!(ack.map(|a| a["ok"].clone()), Some(json!(true)), "the typist's next event is answered");
    let metrics = app.state.telemetry.render().expect("metrics on");
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("confab_realtime_broadcast_failures_total{event=\"userTyping\"} "))
        .map_or(0.0, |n| n.parse().unwrap());
    assert!(dropped >= 1_000.0, "indicators dropped for the stalled member: {dropped} of {INDICATORS}");
    drop(stalled);
}

/// A second tab of a user already online changes nothing in the list, yet gets it; the
/// plural event comes only when configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_socket_gets_the_list_and_the_plural_only_when_configured() {
    let app = TestApp::spawn_with(|c| c.presence_plural_event = true).await;
    let (user, token) = app.user_with_token(&unique_email("tabs")).await;
    let id = user.id.to_hex();
    let has_me = |list: &serde_json::Value| list.as_array().is_some_and(|l| l.iter().any(|u| u == id.as_str()));
    let mut first = RawSocket::connect(&app.base, &token).await;
    assert!(first.wait_for("getOnlineUser", Duration::from_secs(3), has_me).await.is_some());
    let mut second = RawSocket::connect(&app.base, &token).await;
    assert!(second.wait_for("getOnlineUser", Duration::from_secs(3), has_me).await.is_some(), "second tab");
    assert!(second.wait_for("getOnlineUsers", Duration::from_secs(3), has_me).await.is_some(), "plural");
    // The list did not change, so the first tab is not sent it again.
    assert!(first.wait_for("getOnlineUser", Duration::from_millis(700), |_| true).await.is_none());
}

/// A loaded machine, as in a CI run with tests in parallel: more runnable threads than
/// cores, so the server's threads are preempted at any point. Races that need a thread
/// to stall for a network round trip then show up within a few hundred tries.
struct BusyCores {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyCores {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..4)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.drain(..).for_each(|t| t.join().unwrap());
    }
}

/// socket.io-client emits the moment it is told it is connected; the server says so
/// before its connect handler has run, so that event must still find its handler. 1000
/// sockets at once on a loaded machine, each asking to join a chat first thing: every
/// one is answered (before the fix, 7 to 29 of them were not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_event_after_connecting_is_always_handled() {
    let app = TestApp::spawn().await;
    let (viewer, _, chats) = two_users_and_chats(&app).await;
    let load = BusyCores::start();
    let attempts = (0..1000).map(|_| {
        let (base, viewer, chat) = (app.base.clone(), viewer.clone(), chats[0].clone());
        tokio::spawn(async move {
            let mut socket = RawSocket::connect(&base, &viewer).await;
            socket.emit_with_ack("joinChat", &json!(chat), Duration::from_secs(5)).await
        })
    });
    let mut unanswered = 0;
    let answers = futures_util::future::join_all(attempts).await;
    drop(load);
    for attempt in answers {
        let ack = attempt.expect("client task");
        unanswered += (ack.map(|a| a["ok"].clone()) != Some(json!(true))) as usize;
    }
    assert_eq!(unanswered, 0, "joinChat sent right after connecting went unanswered, of 1000");
}

/// Clients that give up during the handshake are never counted online: 400 users on a
/// loaded machine, half closing right after asking to join, half right after being
/// let in (the close can then be handled before the connect handler runs). A newcomer
/// sees only itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_close_while_connecting_are_not_left_online() {
    let app = TestApp::spawn().await;
    let mut tokens = Vec::new();
    for i in 0..400 {
        tokens.push(app.user_with_token(&unique_email(&format!("vanish{i}"))).await.1);
    }
    let load = BusyCores::start();
    let attempts = tokens.into_iter().enumerate().map(|(i, token)| {
        let base = app.base.clone();
        tokio::spawn(async move {
            if i % 2 == 0 {
                RawSocket::connect_and_vanish(&base, &token).await
            } else {
                drop(RawSocket::connect(&base, &token).await)
            }
        })
    });
    futures_util::future::join_all(attempts).await;
    drop(load);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (me, token) = app.user_with_token(&unique_email("vanish-observer")).await;
    let mut observer = RawSocket::connect(&app.base, &token).await;
    let list = observer.wait_for("getOnlineUser", Duration::from_secs(3), |_| true).await.expect("online list");
    assert_eq!(list, json!([me.id.to_hex()]), "only the observer is online");
}

/// A client that asks for changes (`auth.presence = "delta"`) gets the list once, then
/// `userOnline` / `userOffline` with the ids that changed, never the whole list again;
/// the original client beside it still gets the whole list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_clients_get_the_list_once_then_only_changes() {
    let app = TestApp::spawn().await;
    let (watcher, watcher_token) = app.user_with_token(&unique_email("delta-watcher")).await;
    let (comer, comer_token) = app.user_with_token(&unique_email("delta-comer")).await;
    let (w, c) = (watcher.id.to_hex(), comer.id.to_hex());
    let mut delta = RawSocket::connect_with(&app.base, &json!({ "token": watcher_token, "presence": "delta" })).await;
    let first = delta.wait_for("getOnlineUser", Duration::from_secs(3), |_| true).await;
    assert_eq!(first, Some(json!([w])), "the whole list once, at the start");

    let mut classic = RawSocket::connect(&app.base, &comer_token).await;
    let mut whole = json!([w, c]);
    whole.as_array_mut().unwrap().sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(classic.wait_for("getOnlineUser", Duration::from_secs(3), |_| true).await, Some(whole));
    let mut seen = Vec::new();
    while let Some((event, payload)) = delta.next_event(Duration::from_millis(800)).await {
        seen.push((event, payload));
    }
    assert_eq!(seen, vec![("userOnline".to_string(), json!([c]))], "only the change");

    drop(classic);
    let went = delta.wait_for("userOffline", Duration::from_secs(3), |_| true).await;
    assert_eq!(went, Some(json!([c])));
    assert!(delta.wait_for("getOnlineUser", Duration::from_millis(500), |_| true).await.is_none());
}
