//! TODO: systemd
