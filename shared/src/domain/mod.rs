//! The domain types: what latchkey issues, holds and decides about — grants and the codes and tokens
//! issued from them, OAuth clients, resource servers, browser sign-in state, vault projects, API keys,
//! providers, auth sessions and connections, tools — with their formats (token prefixes, id shapes),
//! their status enums and the encryption contexts of what they seal.
//!
//! The layer rule: flows (`oauth`, `vault`, `tools`) and `store` both import this module; it imports
//! only leaves (`crypto`). It knows nothing of DynamoDB items (`store/*` maps these types to and from
//! items) nor of HTTP.

pub mod auth_session;
pub mod authz;
pub mod client;
pub mod connection;
pub mod context;
pub mod grant;
pub mod project;
pub mod provider;
pub mod redirect;
pub mod resource;
pub mod scope;
pub mod tool;
pub mod webhook;

/// A status stored as a string attribute: [`Status::as_str`] writes it, [`Status::parse`] reads it back.
pub trait Status: Copy + Sized {
    /// The stored spelling.
    fn as_str(self) -> &'static str;
    /// The status a stored spelling names; `None` for anything else.
    fn parse(s: &str) -> Option<Self>;
}

/// Caller-supplied text fit to quote back in an error or an event: control characters dropped, at
/// most `max` characters.
pub fn shown(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// A status enum with its stored spellings: inherent `as_str`/`parse`, `Display` and [`Status`].
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The stored spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The status a stored spelling names; `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::domain::Status for $name {
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn parse(s: &str) -> Option<Self> {
                $name::parse(s)
            }
        }
    };
}
pub(crate) use status_enum;
