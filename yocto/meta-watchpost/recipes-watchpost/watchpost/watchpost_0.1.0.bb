SUMMARY = "Edge firmware for on-site camera gateways"
DESCRIPTION = "Pulls local RTSP cameras through GStreamer, runs an object detector on \
               the device, applies rules, commits every alert to a SQLite outbox and \
               delivers it store-and-forward to signed webhooks and MQTT."
HOMEPAGE = "https://github.com/watchpost/watchpost"
BUGTRACKER = "https://github.com/watchpost/watchpost/issues"
SECTION = "multimedia"
CVE_PRODUCT = "watchpost"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57 \
                    file://models/LICENSE-Apache-2.0.txt;md5=3b83ef96387f14655fc854ddc3c6bd57"

DEPENDS = "gstreamer1.0 gstreamer1.0-plugins-base gstreamer1.0-rtsp-server"

SRC_URI = "git://github.com/watchpost/watchpost.git;protocol=https;branch=main"
SRCREV = "309d34a62cacfc66e013a9cfb1356d97aa39649e"

S = "${WORKDIR}/git"

require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates pkgconfig systemd useradd

SYSTEMD_SERVICE:${PN} = "watchpost.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/watchpost --no-create-home \
                       --shell /sbin/nologin --user-group --groups video watchpost"

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/systemd/watchpost.service ${D}${systemd_system_unitdir}/
    install -d ${D}${sysconfdir}/watchpost
    install -m 0644 ${S}/packaging/watchpost.toml ${D}${sysconfdir}/watchpost/
    install -d ${D}${datadir}/watchpost/models
    install -m 0644 ${S}/models/ssdlite-mnv2-300.onnx ${S}/models/nanodet-416.onnx \
        ${S}/models/coco80.txt ${D}${datadir}/watchpost/models/
    install -d ${D}${docdir}/${BPN}
    install -m 0644 ${S}/README.md ${D}${docdir}/${BPN}/
    install -m 0644 ${S}/models/README.md ${D}${docdir}/${BPN}/MODELS.md
}

CONFFILES:${PN} = "${sysconfdir}/watchpost/watchpost.toml"

# What the pipeline links at run time: RTSP in, parsers, software decoders, conversion.
RDEPENDS:${PN} = "\
    ca-certificates \
    gstreamer1.0-libav \
    gstreamer1.0-plugins-bad-videoparsersbad \
    gstreamer1.0-plugins-base-app \
    gstreamer1.0-plugins-base-playback \
    gstreamer1.0-plugins-base-typefindfunctions \
    gstreamer1.0-plugins-base-videoconvertscale \
    gstreamer1.0-plugins-good-isomp4 \
    gstreamer1.0-plugins-good-jpeg \
    gstreamer1.0-plugins-good-rtp \
    gstreamer1.0-plugins-good-rtpmanager \
    gstreamer1.0-plugins-good-rtsp \
    gstreamer1.0-plugins-good-udp \
"

# A firmware service: there is no useful -native or nativesdk variant.
BBCLASSEXTEND = ""
