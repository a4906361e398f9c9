//! TODO: namespace
