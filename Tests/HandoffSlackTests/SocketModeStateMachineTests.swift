import HandoffSlack
import Testing

@Suite struct SocketModeStateMachineTests {
    typealias Machine = SocketModeStateMachine

    static func machine() -> Machine {
        var c = Machine.Configuration()
        c.initialBackoff = .seconds(1)
        c.maxBackoff = .seconds(60)
        c.tooManyWebsocketsBackoff = .seconds(30)
        return Machine(configuration: c, jitter: { 1.0 })
    }

    @Test func connectedOnlyAfterHello() {
        var m = Self.machine()
        #expect(m.start() == [.fetchURL])
        #expect(m.urlFetched("wss://a") == [.connect(1, url: "wss://a")])
        #expect(m.status == .starting)
        #expect(m.hello(1) == [.connected(1)])
        #expect(m.status == .connected)
    }

    @Test func warningMakesBeforeBreaking() {
        var m = Self.machine()
        _ = m.start(); _ = m.urlFetched("u1"); _ = m.hello(1)
        #expect(m.disconnectFrame(1, reason: "warning") == [.fetchURL])
        #expect(m.disconnectFrame(1, reason: "refresh_requested") == [], "one replacement at a time")
        #expect(m.urlFetched("u2") == [.connect(2, url: "u2")])
        #expect(m.status == .connected, "the old socket still works while the new one opens")
        #expect(m.hello(2) == [.connected(2), .close(1)])
        #expect(m.socketClosed(1) == [], "closing the old one is expected")
        #expect(m.liveConnection == 2)
    }

    @Test func aFailedReplacementIsRetriedWhileTheOldSocketLives() {
        var m = Self.machine()
        _ = m.start(); _ = m.urlFetched("u1"); _ = m.hello(1)
        _ = m.disconnectFrame(1, reason: "refresh_requested")
        #expect(m.urlFetchFailed(.transient("boom")) == [.retry(after: .seconds(1))])
        #expect(m.retryTimerFired() == [.fetchURL])
    }

    @Test func linkDisabledAndFatalErrorsStop() {
        var m = Self.machine()
        _ = m.start(); _ = m.urlFetched("u1"); _ = m.hello(1)
        #expect(m.disconnectFrame(1, reason: "link_disabled") == [.stop(.linkDisabled)])
        #expect(m.socketClosed(1) == [])
        #expect(m.retryTimerFired() == [])
        var f = Self.machine()
        _ = f.start()
        #expect(f.urlFetchFailed(.fatal("invalid_auth")) == [.stop(.fatal("invalid_auth"))])
        #expect(f.start() == [])
    }

    @Test func tooManyWebsocketsBacksOffWithoutOpeningMore() {
        var m = Self.machine()
        _ = m.start(); _ = m.urlFetched("u1"); _ = m.hello(1)
        #expect(m.disconnectFrame(1, reason: "too_many_websockets") == [.close(1), .retry(after: .seconds(60))])
        #expect(m.socketClosed(1) == [])
        #expect(m.retryTimerFired() == [.fetchURL])
    }

    @Test func backoffGrowsExponentiallyUpToTheCapAndResetsAfterAHealthyConnection() {
        var m = Self.machine()
        _ = m.start()
        var waits: [Duration] = []
        for _ in 0..<8 {
            let actions = m.urlFetchFailed(.transient("down"))
            guard case .retry(let after)? = actions.first else { Issue.record("expected a retry"); return }
            waits.append(after)
            #expect(m.retryTimerFired() == [.fetchURL])
        }
        #expect(waits == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32), .seconds(60), .seconds(60)])
        _ = m.urlFetched("u")
        let start = ContinuousClock.now
        _ = m.hello(1, at: start)
        #expect(m.socketClosed(1, at: start + .seconds(120)) == [.fetchURL], "a long-lived socket reconnects at once")
        _ = m.urlFetched("u2")
        #expect(m.socketClosed(2) == [.retry(after: .seconds(1))], "and the backoff starts over")
    }

    @Test func aRateLimitedFetchWaitsAtLeastRetryAfter() {
        var m = Self.machine()
        _ = m.start()
        #expect(m.urlFetchFailed(.rateLimited(.seconds(30))) == [.retry(after: .seconds(30))])
    }

    @Test func aSocketWithoutHelloIsGivenUp() {
        var m = Self.machine()
        _ = m.start(); _ = m.urlFetched("u1")
        #expect(m.helloTimedOut(1) == [.close(1), .retry(after: .seconds(1))])
        #expect(m.socketClosed(1) == [])
        #expect(m.hello(1) == [], "a late hello on a socket given up changes nothing")
    }

    @Test func shutdownStopsEverything() {
        var m = Self.machine()
        _ = m.start(); _ = m.urlFetched("u1"); _ = m.hello(1)
        #expect(m.shutdown() == [.stop(.shutdown)])
        #expect(m.status == .stopped(.shutdown))
        #expect(m.disconnectFrame(1, reason: "warning") == [])
    }
}
