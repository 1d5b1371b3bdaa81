import HandoffChatKit
import HandoffCore
import Testing

@Suite struct CommandTests {
    @Test func parsesEveryCommandAsTheIssueWritesIt() throws {
        #expect(try CommandParser.parse("approve 42 ship it") == .decide(.approve, id: 42, text: "ship it"))
        #expect(try CommandParser.parse("approve #42") == .decide(.approve, id: 42, text: nil))
        #expect(try CommandParser.parse("reject 42 too risky on a Friday") == .decide(.reject, id: 42, text: "too risky on a Friday"))
        #expect(try CommandParser.parse("revise 42 use the canary first") == .decide(.revise, id: 42, text: "use the canary first"))
        #expect(try CommandParser.parse("claim") == .claim(.next))
        #expect(try CommandParser.parse("claim support") == .claim(.queue("support")))
        #expect(try CommandParser.parse("claim 7") == .claim(.escalation(7)))
        #expect(try CommandParser.parse("escalate") == .escalate(reason: nil))
        #expect(try CommandParser.parse("escalate the customer is furious") == .escalate(reason: "the customer is furious"))
        #expect(try CommandParser.parse("resolve 3 Refunds take 14 days.") == .resolve(id: 3, resolution: "Refunds take 14 days."))
        #expect(try CommandParser.parse("label 9 positive") == .label(task: 9, value: "positive"))
        #expect(try CommandParser.parse("rate 5 4") == .rate(id: 5, value: "4"))
        #expect(try CommandParser.parse("queue") == .queue)
        #expect(try CommandParser.parse("help") == .help(nil))
        #expect(try CommandParser.parse("help reject") == .help(.reject))
        #expect(try CommandParser.parse("") == .help(nil))
    }

    @Test func slashPrefixCaseAndAliasesAreTolerated() throws {
        #expect(try CommandParser.parse("/handoff approve 42") == .decide(.approve, id: 42, text: nil))
        #expect(try CommandParser.parse("handoff APPROVE 42") == .decide(.approve, id: 42, text: nil))
        #expect(try CommandParser.parse("lgtm 42") == .decide(.approve, id: 42, text: nil))
        #expect(try CommandParser.parse("Approve: 42 fine") == .decide(.approve, id: 42, text: "fine"))
    }

    @Test func aThreadReplyTakesTheIDFromItsCard() throws {
        #expect(try CommandParser.parse("approve ship it", impliedID: 42) == .decide(.approve, id: nil, text: "ship it"))
        #expect(try CommandParser.parse("approve 42 ship it", impliedID: 42) == .decide(.approve, id: 42, text: "ship it"))
        // A leading number that is not the card's id is part of the reason, unless written as #id.
        #expect(try CommandParser.parse("reject 5 reasons why not", impliedID: 42) == .decide(.reject, id: nil, text: "5 reasons why not"))
        #expect(try CommandParser.parse("reject #5 no", impliedID: 42) == .decide(.reject, id: 5, text: "no"))
        #expect(try CommandParser.parse("resolve It is fixed now", impliedID: 3) == .resolve(id: nil, resolution: "It is fixed now"))
    }

    @Test func badArgumentsGiveTheUsageNotSilence() {
        func problem(_ text: String) -> CommandError? {
            do {
                _ = try CommandParser.parse(text)
                return nil
            } catch {
                return error
            }
        }
        let missingReason = problem("reject 42")
        #expect(missingReason?.command == .reject)
        #expect(missingReason?.message(prefix: "/handoff ").contains("Usage: `/handoff reject <id> <reason>`") == true)
        #expect(problem("approve")?.message(prefix: "/handoff ").contains("approve needs an approval id") == true)
        #expect(problem("approve abc")?.message(prefix: "/handoff ").contains("`abc` is not an approval id") == true)
        #expect(problem("resolve 3")?.command == .resolve)
        #expect(problem("rate 5")?.command == .rate)
        #expect(problem("label 9")?.command == .label)
        #expect(problem("claim two words")?.command == .claim)
        let unknown = problem("deploy now")
        #expect(unknown?.command == nil)
        #expect(unknown?.message(prefix: "/handoff ").contains("/handoff help") == true)
    }

    @Test func helpTextIsDerivedFromTheCommandEnum() {
        let help = Command.helpText()
        for command in Command.allCases {
            #expect(help.contains("`/handoff \(command.usage)`"), "help lacks \(command)")
            #expect(help.contains(command.summary))
            #expect(Command.usageHint.contains(command.rawValue))
        }
        #expect(CommandParser.startsWithCommand("approve it"))
        #expect(!CommandParser.startsWithCommand("looks good to me"))
    }
}

@Suite struct ReactionMapTests {
    @Test func aliasesAndSkinTonesMapLikeTheBaseEmoji() {
        let map = ReactionMap()
        #expect(map.action(for: "white_check_mark") == .approve)
        #expect(map.action(for: "heavy_check_mark") == .approve)
        #expect(map.action(for: ":white_check_mark:") == .approve)
        #expect(map.action(for: "✅") == .approve)
        #expect(map.action(for: "x") == .reject)
        #expect(map.action(for: "repeat") == .revise)
        #expect(map.action(for: "raised_hand") == .claim)
        #expect(map.action(for: "raised_hand::skin-tone-4") == .claim)
        #expect(map.action(for: "arrow_up") == .escalate)
        #expect(map.action(for: "+1") == .feedbackPositive)
        #expect(map.action(for: "thumbsup") == .feedbackPositive)
        #expect(map.action(for: "+1::skin-tone-3") == .feedbackPositive)
        #expect(map.action(for: "👍🏽") == .feedbackPositive)
        #expect(map.action(for: "-1") == .feedbackNegative)
        #expect(map.action(for: "tada") == nil)
        #expect(map.shortcode(for: .approve) == "white_check_mark")
    }

    @Test func configurationReplacesAnActionsNames() {
        let map = ReactionMap().overriding([.approve: ["shipit", "white_check_mark"]])
        #expect(map.action(for: "shipit") == .approve)
        #expect(map.action(for: "heavy_check_mark") == nil)
        #expect(map.action(for: "x") == .reject)
    }
}
