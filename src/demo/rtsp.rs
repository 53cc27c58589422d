//! An in-process RTSP server that serves an H.264 MP4 in an endless loop, as a camera would.
//!
//! rtsp-server plays a file once and advertises its length, after which clients stop. The
//! loop is a media subclass: a segment seek on the demuxer once prepared, another segment
//! seek each time the segment is done (no flush, so running time keeps increasing), and no
//! stop position, so clients see a live stream.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RtspServerError {
    #[error("clip {0}: not found")]
    NoClip(PathBuf),
    #[error("RTSP server: {0}")]
    Start(String),
}

mod imp {
    use super::*;
    use gstreamer_rtsp_server::subclass::prelude::*;

    #[derive(Default)]
    pub struct LoopMedia;

    #[glib::object_subclass]
    impl ObjectSubclass for LoopMedia {
        const NAME: &'static str = "WatchpostLoopMedia";
        type Type = super::LoopMedia;
        type ParentType = rtsp::RTSPMedia;
    }

    impl ObjectImpl for LoopMedia {}

    impl RTSPMediaImpl for LoopMedia {
        fn prepared(&self) {
            // The flushing seek clears the sticky segment downstream. rtsp-server 1.22 aborts the
            // process (gst_rtsp_media_get_rates) if a PLAY is answered before the new segment
            // is sticky on the payloader's peer (rtpbin's send_rtp_sink), so report "prepared"
            // only then: at the first buffer after the segment, because a pad stores its
            // pending sticky events on the peer before it runs buffer probes (the event probe
            // itself runs before the peer has the event).
            let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
            let pay_src = self
                .obj()
                .element()
                .downcast_ref::<gst::Bin>()
                .and_then(|b| b.by_name("pay0"))
                .and_then(|p| p.static_pad("src"));
            if let Some(pad) = &pay_src {
                let segment_seen = std::sync::atomic::AtomicBool::new(false);
                pad.add_probe(
                    gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER,
                    move |_, info| {
                        if info.buffer().is_some()
                            && segment_seen.load(std::sync::atomic::Ordering::Relaxed)
                        {
                            let _ = tx.try_send(());
                            return gst::PadProbeReturn::Remove;
                        }
                        if info.event().map(|e| e.type_()) == Some(gst::EventType::Segment) {
                            segment_seen.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        gst::PadProbeReturn::Ok
                    },
                );
            }
            seek_to_start(&self.obj(), gst::SeekFlags::FLUSH | gst::SeekFlags::SEGMENT);
            if pay_src.is_some() && rx.recv_timeout(std::time::Duration::from_secs(5)).is_err() {
                tracing::warn!("demo RTSP server: no segment after the loop seek");
            }
            self.parent_prepared();
        }

        fn handle_message(&self, message: &gst::MessageRef) -> bool {
            if let gst::MessageView::SegmentDone(_) = message.view() {
                seek_to_start(&self.obj(), gst::SeekFlags::SEGMENT);
                return true;
            }
            self.parent_handle_message(message)
        }

        fn query_stop(&self) -> Option<gst::ClockTime> {
            None
        }
    }

    fn seek_to_start(media: &super::LoopMedia, flags: gst::SeekFlags) {
        let bin = media.element();
        let target = bin
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("demux"))
            .unwrap_or(bin);
        if let Err(e) = target.seek(
            1.0,
            flags,
            gst::SeekType::Set,
            gst::ClockTime::ZERO,
            gst::SeekType::None,
            gst::ClockTime::NONE,
        ) {
            tracing::warn!(error = %e, "demo RTSP server: loop seek failed");
        }
    }
}

glib::wrapper! {
    pub struct LoopMedia(ObjectSubclass<imp::LoopMedia>) @extends rtsp::RTSPMedia;
}

/// A running server; dropping it stops it.
pub struct RtspClipServer {
    port: u16,
    server: rtsp::RTSPServer,
    /// The listening socket's source in the server's context.
    listener: Option<glib::Source>,
    main_loop: glib::MainLoop,
    ctx: glib::MainContext,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RtspClipServer {
    /// Serves `clip` at `rtsp://127.0.0.1:{port}/clip`, on an ephemeral port (or `port`).
    pub fn start(clip: &Path, port: u16) -> Result<Self, RtspServerError> {
        Self::start_with_auth(clip, port, None)
    }

    /// As [`Self::start`], asking for HTTP basic credentials `(user, password)`, as most
    /// cameras do (tests of the unauthorized path).
    pub fn start_with_auth(
        clip: &Path,
        port: u16,
        credentials: Option<(&str, &str)>,
    ) -> Result<Self, RtspServerError> {
        if !clip.is_file() {
            return Err(RtspServerError::NoClip(clip.to_path_buf()));
        }
        // Quote the path for the launch line; a clip path with a quote in it is refused.
        let location = clip.display().to_string();
        if location.contains('"') {
            return Err(RtspServerError::Start(format!(
                "unsupported clip path {location}"
            )));
        }
        Self::serve(
            &format!(
                "( filesrc location=\"{location}\" ! qtdemux name=demux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
            ),
            port,
            credentials,
            true,
        )
    }

    /// Serves any `gst-rtsp-server` launch line (its payloader named `pay0`) at `/clip`: a
    /// stream in another codec for tests, e.g. H.265 or MJPEG from a live test pattern.
    #[cfg(feature = "test-helpers")]
    pub fn start_launch(launch: &str, port: u16) -> Result<Self, RtspServerError> {
        Self::serve(launch, port, None, false)
    }

    /// `looped`: the launch line is a file, replayed from the start at its end.
    fn serve(
        launch: &str,
        port: u16,
        credentials: Option<(&str, &str)>,
        looped: bool,
    ) -> Result<Self, RtspServerError> {
        crate::init_gstreamer().map_err(|e| RtspServerError::Start(e.to_string()))?;
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(launch);
        if looped {
            factory.set_media_gtype(LoopMedia::static_type());
        }
        factory.set_shared(true);
        if let Some((user, password)) = credentials {
            let auth = rtsp::RTSPAuth::new();
            let token = rtsp::RTSPToken::builder()
                .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
                .build();
            auth.add_basic(&rtsp::RTSPAuth::make_basic(user, password), &token);
            server.set_auth(Some(&auth));
            factory.add_role_from_structure(
                &gst::Structure::builder("viewer")
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build(),
            );
        }
        server
            .mount_points()
            .ok_or_else(|| RtspServerError::Start("no mount points".into()))?
            .add_factory("/clip", factory);
        let (tx, rx) = std::sync::mpsc::channel();
        let (ml, c, srv) = (main_loop.clone(), ctx.clone(), server.clone());
        let thread = std::thread::Builder::new()
            .name("rtsp-server".into())
            .spawn(move || {
                let result = c.with_thread_default(|| {
                    let id = match srv.attach(Some(&c)) {
                        Ok(id) => id,
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    // SourceId::remove() looks in the global context; this source lives in `c`.
                    let _ = tx.send(Ok((srv.bound_port(), c.find_source_by_id(&id))));
                    ml.run();
                });
                if let Err(e) = result {
                    tracing::error!(error = %e, "RTSP server context");
                }
            })
            .map_err(|e| RtspServerError::Start(e.to_string()))?;
        let (port, listener) = rx
            .recv()
            .map_err(|_| RtspServerError::Start("server thread ended".into()))?
            .map_err(RtspServerError::Start)?;
        Ok(Self {
            port: u16::try_from(port)
                .map_err(|_| RtspServerError::Start(format!("bad port {port}")))?,
            server,
            listener,
            main_loop,
            ctx,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/clip", self.port)
    }
}

impl Drop for RtspClipServer {
    /// Stops like a camera that lost power: connected clients are cut off, not just the listener
    /// (the media's streaming threads would otherwise keep sending to them).
    fn drop(&mut self) {
        // Tear down inside the server's own context, in this order: close the listener (a
        // client reconnecting to a media being torn down makes rtsp-server 1.22 abort the
        // process in gst_rtsp_media_get_rates), cut the clients off, stop the loop.
        let (server, listener, main_loop) = (
            self.server.clone(),
            self.listener.take(),
            self.main_loop.clone(),
        );
        self.ctx.invoke(move || {
            if let Some(l) = listener {
                l.destroy();
            }
            server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
            main_loop.quit();
        });
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
