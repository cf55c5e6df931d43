//! Image messages: validation by content, metadata stripping, local media serving, no
//! orphans, and the recipient's socket hearing about it.

mod common;

use std::io::Cursor;

use common::{expect_error, TestApp};
use futures_util::{SinkExt, StreamExt};
use image::{DynamicImage, ImageFormat, RgbImage, Rgba, RgbaImage};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn photo(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])))
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A tiny PNG whose header claims 100000×100000 pixels: a decompression bomb.
fn png_bomb() -> Vec<u8> {
    let mut png = encode(&photo(8, 8), ImageFormat::Png);
    // IHDR data starts at 16: width, height (big-endian); its CRC covers type + data.
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A JPEG with an EXIF block holding Orientation = 6 (rotate 90°) and a GPS IFD.
fn jpeg_with_gps(w: u32, h: u32) -> Vec<u8> {
    let jpeg = encode(&photo(w, h), ImageFormat::Jpeg);
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    // Orientation, SHORT, 1, value 6.
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    // GPSInfo IFD pointer, LONG, 1, offset 38.
    tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD: GPSLatitudeRef "N".
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

struct Setup {
    app: TestApp,
    alice: String,
    bob_token: String,
    bob_id: String,
    chat_id: String,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user_with_token("img-alice@example.com").await;
    let (bob, bob_token) = app.user_with_token("img-bob@example.com").await;
    let (_, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": bob.id.to_hex() }), Some(&alice)).await;
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    Setup { app, alice, bob_token, bob_id: bob.id.to_hex(), chat_id }
}

async fn upload(
    s: &Setup,
    token: &str,
    bytes: Vec<u8>,
    name: &str,
    mime: &str,
    text: Option<&str>,
) -> (reqwest::StatusCode, Value) {
    let mut form = reqwest::multipart::Form::new()
        .text("chatId", s.chat_id.clone())
        .part("image", reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()).mime_str(mime).unwrap());
    if let Some(t) = text {
        form = form.text("text", t.to_string());
    }
    let resp = s.app.client.post(s.app.url("/api/v1/message")).bearer_auth(token).multipart(form).send().await.unwrap();
    common::read(resp).await
}

/// The bytes served for a stored image URL (root-relative, so on this app's origin).
async fn media(app: &TestApp, url: &str) -> bytes::Bytes {
    app.client.get(app.url(url)).send().await.unwrap().bytes().await.unwrap()
}

fn media_files(s: &Setup) -> Vec<std::path::PathBuf> {
    let dir = s.app.data_dir.path().join("media/chat-images");
    std::fs::read_dir(dir).map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default()
}

#[tokio::test]
async fn every_allowed_format_is_accepted_with_a_thumbnail() {
    let s = setup().await;
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_pixel(600, 300, Rgba([10, 20, 30, 128])));
    for (format, mime, ext, img) in [
        (ImageFormat::Png, "image/png", "png", rgba.clone()),
        (ImageFormat::Jpeg, "image/jpeg", "jpg", photo(640, 480)),
        (ImageFormat::Gif, "image/gif", "gif", photo(50, 40)),
        (ImageFormat::WebP, "image/webp", "webp", rgba.clone()),
    ] {
        // The client's claimed type is ignored: everything is sent as octet-stream.
        let (status, body) =
            upload(&s, &s.alice, encode(&img, format), "x.bin", "application/octet-stream", None).await;
        assert_eq!(status, 201, "{format:?}: {body}");
        let m = &body["message"];
        assert_eq!((m["messageType"].as_str(), m["text"].as_str()), (Some("image"), Some("")));
        let image = &m["image"];
        let url = image["url"].as_str().unwrap();
        // Root-relative without public_url: it loads from whichever origin serves the page.
        assert!(url.starts_with("/media/chat-images/") && url.ends_with(&format!(".{ext}")), "{url}");
        assert!(image["publicId"].as_str().unwrap().starts_with("chat-images/"));
        let resp = s.app.client.get(s.app.url(url)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], mime);
        assert!(resp.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        let served = resp.bytes().await.unwrap();
        let on_disk = std::fs::read(
            s.app.data_dir.path().join("media").join(image["publicId"].as_str().unwrap()).with_extension(ext),
        )
        .unwrap();
        assert_eq!(served.as_ref(), on_disk.as_slice(), "served byte-exact");
        let thumb = media(&s.app, image["thumbUrl"].as_str().unwrap()).await;
        let thumb = image::load_from_memory(&thumb).unwrap();
        assert!(thumb.width() <= 320 && thumb.height() <= 320);
    }
    // The chat list shows the original's label for images, even with a caption.
    assert_eq!(
        upload(&s, &s.alice, encode(&photo(20, 20), ImageFormat::Png), "a.png", "image/png", Some("look")).await.0,
        201
    );
    let (_, list) = s.app.get("/api/v1/chat/all", Some(&s.alice)).await;
    assert_eq!(list["chats"][0]["chat"]["latestMessage"]["text"], "📷 Image");
}

#[tokio::test]
async fn bad_files_are_refused_and_nothing_is_stored() {
    let s = setup().await;
    let msg =
        expect_error(upload(&s, &s.alice, b"just text, not a picture".to_vec(), "a.png", "image/png", None).await, 400);
    assert_eq!(msg, "Only JPEG, PNG, GIF and WebP images are allowed");
    // A BMP header: a real image type, just not an allowed one.
    let mut bmp = b"BM".to_vec();
    bmp.resize(64, 0);
    assert_eq!(expect_error(upload(&s, &s.alice, bmp, "a.bmp", "image/bmp", None).await, 400), msg);
    let png = encode(&photo(200, 200), ImageFormat::Png);
    let truncated = png[..png.len() / 2].to_vec();
    assert_eq!(
        expect_error(upload(&s, &s.alice, truncated, "t.png", "image/png", None).await, 400),
        "The image is corrupt or truncated"
    );
    // A JPEG cut anywhere, or missing only its end marker, is refused like the others
    // (its decoder would fill the rest with grey).
    let jpeg = encode(&photo(300, 200), ImageFormat::Jpeg);
    let mut cuts: Vec<Vec<u8>> =
        [30, 50, 75, 90, 99].iter().map(|pct| jpeg[..jpeg.len() * pct / 100].to_vec()).collect();
    cuts.push(jpeg[..jpeg.len() - 2].to_vec());
    for cut in cuts {
        let len = cut.len();
        let msg = expect_error(upload(&s, &s.alice, cut, "t.jpg", "image/jpeg", None).await, 400);
        assert_eq!(msg, "The image is corrupt or truncated", "{len} of {} bytes", jpeg.len());
    }
    let bomb = expect_error(upload(&s, &s.alice, png_bomb(), "bomb.png", "image/png", None).await, 400);
    assert!(bomb.starts_with("Image dimensions 100000x100000 exceed"), "{bomb}");
    let six_mb = vec![0xffu8; 6 * 1024 * 1024];
    let msg = expect_error(upload(&s, &s.alice, six_mb, "big.jpg", "image/jpeg", None).await, 413);
    assert!(msg.contains("too large"), "{msg}");
    // A non-member's upload is refused before anything is stored.
    let (_, carol) = s.app.user_with_token("img-carol@example.com").await;
    let ok_png = encode(&photo(10, 10), ImageFormat::Png);
    assert_eq!(
        expect_error(upload(&s, &carol, ok_png, "a.png", "image/png", None).await, 403),
        "You are not a participant of this chat"
    );
    assert!(media_files(&s).is_empty(), "no file left behind: {:?}", media_files(&s));
}

#[tokio::test]
async fn exif_and_gps_are_stripped_and_orientation_applied() {
    let s = setup().await;
    let original = jpeg_with_gps(40, 20);
    assert!(original.windows(4).any(|w| w == b"Exif"));
    let (status, body) = upload(&s, &s.alice, original, "gps.jpg", "image/jpeg", Some("from my trip")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"]["text"], "from my trip");
    let stored = media(&s.app, body["message"]["image"]["url"].as_str().unwrap()).await;
    assert!(!stored.windows(4).any(|w| w == b"Exif"), "EXIF block removed");
    let decoded = image::load_from_memory(&stored).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (20, 40), "orientation 6 applied: 40×20 became 20×40");
}

#[tokio::test]
async fn media_paths_cannot_escape_the_media_directory() {
    let s = setup().await;
    std::fs::write(s.app.data_dir.path().join("secret.txt"), "top secret").unwrap();
    let addr = s.app.base.trim_start_matches("http://").to_string();
    for path in [
        "/media/../secret.txt",
        "/media/..%2fsecret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/chat-images/../../secret.txt",
        "/media/",
        "/media/chat-images/",
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 404") || response.starts_with("HTTP/1.1 400"), "{path}: {response}");
        assert!(!response.contains("top secret"), "{path} leaked the file");
    }
}

#[tokio::test]
async fn the_recipient_socket_hears_about_the_image() {
    let s = setup().await;
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", s.app.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let open = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "Engine.IO open packet");
    ws.send(WsMessage::text(format!("40{{\"token\":\"{}\"}}", s.bob_token))).await.unwrap();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut posted = None;
    while tokio::time::Instant::now() < deadline {
        let frame = match tokio::time::timeout(std::time::Duration::from_millis(200), ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => t.to_string(),
            _ => String::new(),
        };
        if frame.starts_with("40") && posted.is_none() {
            let (status, body) =
                upload(&s, &s.alice, encode(&photo(30, 30), ImageFormat::Png), "p.png", "image/png", None).await;
            assert_eq!(status, 201);
            posted = Some(body["message"]["_id"].as_str().unwrap().to_string());
        }
        if frame.starts_with("42[\"newMessage\"") {
            let event: Value = serde_json::from_str(&frame[2..]).unwrap();
            let m = &event[1];
            assert_eq!(m["messageType"], "image");
            assert_eq!(Some(m["_id"].as_str().unwrap().to_string()), posted);
            assert_ne!(m["sender"], s.bob_id.as_str());
            return;
        }
        frames.push(frame);
    }
    panic!("no newMessage; frames: {frames:?}");
}

mod orphans {
    use std::sync::Arc;

    use async_trait::async_trait;
    use confab::domain::{Chat, Email, LatestMessage, Message, ObjectId, User};
    use confab::media::image::ImageLimits;
    use confab::media::local::LocalMedia;
    use confab::ports::{BackendResult, ChatSummary, HistoryPage, Store};
    use confab::realtime::SocketNotifier;
    use confab::services::chats::{ChatService, Draft};
    use confab::services::media::MediaService;
    use confab::services::ServiceError;
    use confab::store::sqlite::SqliteStore;

    use super::{encode, photo};

    /// The real SQLite store, except that storing a message fails, as a full disk would.
    struct MessagesFail(SqliteStore);

    #[async_trait]
    impl Store for MessagesFail {
        async fn find_or_create_user(&self, e: &Email, n: &str) -> BackendResult<User> {
            self.0.find_or_create_user(e, n).await
        }
        async fn user_by_id(&self, id: &ObjectId) -> BackendResult<Option<User>> {
            self.0.user_by_id(id).await
        }
        async fn list_users(&self) -> BackendResult<Vec<User>> {
            self.0.list_users().await
        }
        async fn rename_user(&self, id: &ObjectId, n: &str) -> BackendResult<Option<User>> {
            self.0.rename_user(id, n).await
        }
        async fn bump_token_version(&self, id: &ObjectId) -> BackendResult<Option<User>> {
            self.0.bump_token_version(id).await
        }
        async fn open_chat(&self, a: &ObjectId, b: &ObjectId) -> BackendResult<(Chat, bool)> {
            self.0.open_chat(a, b).await
        }
        async fn chat_by_id(&self, id: &ObjectId) -> BackendResult<Option<Chat>> {
            self.0.chat_by_id(id).await
        }
        async fn chats_for_user(&self, u: &ObjectId) -> BackendResult<Vec<ChatSummary>> {
            self.0.chats_for_user(u).await
        }
        async fn add_message(&self, _: &Message, _: &LatestMessage) -> BackendResult<()> {
            anyhow::bail!("database or disk is full")
        }
        async fn messages(&self, c: &ObjectId, p: &HistoryPage) -> BackendResult<Vec<Message>> {
            self.0.messages(c, p).await
        }
        async fn mark_seen(&self, c: &ObjectId, r: &ObjectId, at: i64) -> BackendResult<Vec<ObjectId>> {
            self.0.mark_seen(c, r, at).await
        }
        async fn ping(&self) -> BackendResult<()> {
            self.0.ping().await
        }
    }

    #[tokio::test]
    async fn an_image_is_removed_when_its_message_cannot_be_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(MessagesFail(SqliteStore::open(&dir.path().join("confab.db")).unwrap()));
        let media_root = dir.path().join("media");
        let media =
            Arc::new(MediaService::new(Arc::new(LocalMedia::open(&media_root, None).unwrap()), ImageLimits::default()));
        let (_svc, io) = socketioxide::SocketIo::new_svc();
        io.ns("/", async |_: socketioxide::extract::SocketRef| {});
        let chats = ChatService::new(
            store.clone(),
            Arc::new(SocketNotifier::new(io, std::time::Duration::from_secs(2), Default::default())),
            media,
            Default::default(),
        );
        let a = store.find_or_create_user(&Email::parse("o-a@example.com").unwrap(), "a").await.unwrap();
        let b = store.find_or_create_user(&Email::parse("o-b@example.com").unwrap(), "b").await.unwrap();
        let (chat, _) = store.open_chat(&a.id, &b.id).await.unwrap();
        let chat_id = chat.id.to_hex();
        let png = encode(&photo(16, 16), image::ImageFormat::Png);
        let result = chats.post_image(&a, Draft { chat_id: Some(&chat_id), text: None }, png).await;
        assert!(matches!(result, Err(ServiceError::Unavailable(_))), "{result:?}");
        let left: Vec<_> = std::fs::read_dir(media_root.join("chat-images")).unwrap().collect();
        assert!(left.is_empty(), "no orphaned files: {left:?}");
    }
}

/// A forged `Host` must not end up in the URL every recipient loads; `public_url`, when
/// set, is the only origin written into stored messages.
#[tokio::test]
async fn stored_image_urls_never_come_from_the_host_header() {
    let png = encode(&photo(20, 10), ImageFormat::Png);
    for public_url in [None, Some("https://chat.example.com/")] {
        let app = TestApp::spawn_with(|c| c.public_url = public_url.map(str::to_string)).await;
        let (_, alice) = app.user_with_token("host-alice@example.com").await;
        let (bob, _) = app.user_with_token("host-bob@example.com").await;
        let (_, chat) = app.post("/api/v1/chat/new", json!({ "otherUserId": bob.id.to_hex() }), Some(&alice)).await;
        let form = reqwest::multipart::Form::new()
            .text("chatId", chat["chatId"].as_str().unwrap().to_string())
            .part("image", reqwest::multipart::Part::bytes(png.clone()).file_name("a.png"));
        let resp = app
            .client
            .post(app.url("/api/v1/message"))
            .header("host", "attacker.example:8080")
            .header("x-forwarded-host", "attacker.example")
            .bearer_auth(&alice)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let (status, body) = common::read(resp).await;
        assert_eq!(status, 201, "{body}");
        let expected = public_url.unwrap_or("").trim_end_matches('/').to_string() + "/media/chat-images/";
        for key in ["url", "thumbUrl"] {
            let url = body["message"]["image"][key].as_str().unwrap();
            assert!(url.starts_with(&expected), "{key} {url} starts with {expected}");
            assert!(!url.contains("attacker"), "{url}");
        }
        let (_, history) =
            app.get(&format!("/api/v1/message/{}", chat["chatId"].as_str().unwrap()), Some(&alice)).await;
        assert!(!history.to_string().contains("attacker"), "stored copy: {history}");
    }
}
