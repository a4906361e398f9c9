//! TODO: installer
