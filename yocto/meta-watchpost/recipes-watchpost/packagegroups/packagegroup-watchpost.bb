SUMMARY = "watchpost camera gateway and the GStreamer plugins it decodes with"
DESCRIPTION = "Everything an image needs to run watchpost: the service and its runtime \
               plugins. Add to an image with IMAGE_INSTALL:append = \" packagegroup-watchpost\"."
HOMEPAGE = "https://github.com/watchpost/watchpost"
BUGTRACKER = "https://github.com/watchpost/watchpost/issues"
SECTION = "multimedia"
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = "\
    gstreamer1.0-plugins-base-videoconvertscale \
    gstreamer1.0-plugins-good-rtsp \
    watchpost \
"
