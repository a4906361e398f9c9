//! TODO: supervise
