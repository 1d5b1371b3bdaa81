import Testing
@testable import HandoffStore
@Test func storePlaceholder() { #expect(Bool(true)) }
