import Foundation
import HandoffChatKit
import HandoffCore
import HandoffSlack
import HandoffTesting
import HTTPTypes
import Testing

/// Edge case A23 and the Events API handler.
@Suite struct SlackSignatureTests {
    static let vectorSecret = Secret("8f742231b10e8888abcd99yyyzzz85a5")
    static let vectorTimestamp = "1531420618"
    static let vectorBody = Array("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c".utf8)
    static let vectorSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

    @Test("A23 signature: the python-slack-sdk vector is accepted; 301 s old and tampered bodies are rejected")
    func a23_signature() throws {
        let verifier = SlackSignatureVerifier(secret: Self.vectorSecret)
        let at = Date(timeIntervalSince1970: 1_531_420_618)
        try verifier.verify(timestamp: Self.vectorTimestamp, signature: Self.vectorSignature, body: Self.vectorBody, now: at)
        #expect(SlackSignatureVerifier.sign(body: Self.vectorBody, timestamp: Self.vectorTimestamp, secret: Self.vectorSecret) == Self.vectorSignature)
        #expect(throws: SlackSignatureVerifier.Failure.self) {
            try verifier.verify(timestamp: Self.vectorTimestamp, signature: Self.vectorSignature, body: Self.vectorBody,
                                now: at.addingTimeInterval(301))
        }
        try verifier.verify(timestamp: Self.vectorTimestamp, signature: Self.vectorSignature, body: Self.vectorBody, now: at.addingTimeInterval(299))
        var tampered = Self.vectorBody
        tampered[tampered.count - 1] = UInt8(ascii: "d")
        #expect(throws: SlackSignatureVerifier.Failure.self) {
            try verifier.verify(timestamp: Self.vectorTimestamp, signature: Self.vectorSignature, body: tampered, now: at)
        }
        #expect(throws: SlackSignatureVerifier.Failure.self) {
            try verifier.verify(timestamp: nil, signature: Self.vectorSignature, body: Self.vectorBody, now: at)
        }
        #expect(throws: SlackSignatureVerifier.Failure.self) {
            try verifier.verify(timestamp: Self.vectorTimestamp, signature: "v0=zz", body: Self.vectorBody, now: at)
        }
    }

    @Test("A23 signature over HTTP: 401 for a stale or tampered request, url_verification answered, events recorded once")
    func a23_endpoint() async throws {
        let sink = RecordingSink()
        let now = Date()
        let endpoint = SlackEventsEndpoint(configuration: .init(signingSecret: Secret("s3cret")), sink: sink, now: { now })
        func headers(_ body: [UInt8], _ ts: Int64) -> HTTPFields {
            let t = String(ts)
            return [HTTPField.Name("X-Slack-Request-Timestamp")!: t,
                    HTTPField.Name("X-Slack-Signature")!: SlackSignatureVerifier.sign(body: body, timestamp: t, secret: Secret("s3cret"))]
        }
        let nowTS = Int64(now.timeIntervalSince1970)
        let challenge = Array(#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","token":"x"}"#.utf8)
        let verified = await endpoint.handle(headers: headers(challenge, nowTS), body: challenge)
        #expect(verified.status == 200)
        #expect(verified.body.contains("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"))
        #expect(await endpoint.handle(headers: headers(challenge, nowTS - 301), body: challenge).status == 401)
        var tampered = challenge
        tampered[5] = UInt8(ascii: "X")
        #expect(await endpoint.handle(headers: headers(challenge, nowTS), body: tampered).status == 401)
        #expect(await endpoint.handle(headers: [:], body: challenge).status == 401)

        let event = FakeSlackPayloads.eventCallback(FakeSlackPayloads.reaction(user: "U0ALICE", reaction: "x", channel: "C1", ts: "1.000100",
                                                                               eventTS: "2.000100"), eventID: "Ev42")
        let body = Array(event.canonicalText.utf8)
        #expect(await endpoint.handle(headers: headers(body, nowTS), body: body).status == 200)
        #expect(await endpoint.handle(headers: headers(body, nowTS), body: body).status == 200)  // X-Slack-Retry-Num: 1
        #expect(await sink.recordedKeys == ["event:Ev42"])

        let action = FakeSlackPayloads.blockAction(user: "U0ALICE", channel: "C1", messageTS: "1.000100", actionID: "approve",
                                                   value: "approval:1", actionTS: "3.000100", triggerID: "t1")
        let form = Array(("payload=" + action.canonicalText.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!).utf8)
        #expect(await endpoint.handle(headers: headers(form, nowTS), body: form).status == 200)
        #expect(await sink.recordedKeys.contains("action:C1:1.000100:approve:U0ALICE:3.000100"))

        await sink.setReply("Approval #1 approved.")
        let slash = Array("command=%2Fhandoff&text=approve+1&user_id=U0ALICE&channel_id=C1&trigger_id=tt1&team_id=T1".utf8)
        let answer = await endpoint.handle(headers: headers(slash, nowTS), body: slash)
        #expect(answer.status == 200)
        #expect(answer.contentType.hasPrefix("application/json"))
        #expect(answer.body.contains("\"response_type\":\"ephemeral\""))
        #expect(answer.body.contains("Approval #1 approved."))

        await sink.failNext()
        let other = Array(FakeSlackPayloads.eventCallback(.object(["type": .string("reaction_added")]), eventID: "Ev43").canonicalText.utf8)
        #expect(await endpoint.handle(headers: headers(other, nowTS), body: other).status == 500, "not durable → not acked, Slack retries")
    }
}
