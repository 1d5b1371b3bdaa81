import HandoffCore

/// Chat credentials use the core's ``HandoffCore/Secret`` (moved there so the AI layer shares it);
/// this name keeps `HandoffChatKit.Secret` working.
package typealias Secret = HandoffCore.Secret
