import Foundation
import HandoffTesting
import Testing

/// The README's walk-through is the operator's first contact: replay it exactly as written.
@Suite(.serialized) struct CommandLineTests {
    @Test func readmeWalkthroughRunsAsWritten() async throws {
        let readme = try String(contentsOf: BuiltProducts.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = try #require(readme.range(of: "<!-- walkthrough:begin -->"), "README lost its walk-through markers")
        let end = try #require(readme.range(of: "<!-- walkthrough:end -->"))
        let block = readme[begin.upperBound..<end.lowerBound]
        let lines = block.split(separator: "\n").map(String.init).filter { $0.hasPrefix("handoff ") }
        #expect(lines.count > 30, "the walk-through should show every capability")

        let binary = try BuiltProducts.executable("handoff")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = [
            "HANDOFF_DATABASE": dir.file("walkthrough.sqlite"),
            "HANDOFF_POLICY": BuiltProducts.packageRoot.appendingPathComponent("manifests/policies/handoff.example.yaml").path,
        ]
        var transcript: [String] = []
        for line in lines {
            var command = line
            var comment = ""
            if let hash = line.range(of: "  #") {
                command = String(line[..<hash.lowerBound])
                comment = String(line[hash.upperBound...]).trimmingCharacters(in: .whitespaces)
            }
            let words = Array(shellWords(command).dropFirst())
            let result = try await runProcess(binary, words, environment: env, directory: dir.path, timeout: 30)
            transcript.append("$ \(command)\n\(result.stdout)\(result.stderr)")
            if comment.hasPrefix("refused") {
                #expect(result.status != 0, "expected a refusal: \(line)\n\(result.stdout)")
                // The refusal must say why, in words close to the README's promise.
                let reason = comment.dropFirst("refused:".count).trimmingCharacters(in: .whitespaces)
                let keyWords: [Substring] = Array(reason.split(separator: " ").filter { $0.count > 5 }.prefix(2))
                for word in keyWords {
                    #expect(result.stderr.lowercased().contains(word.lowercased()), "refusal for `\(command)` should mention '\(word)': \(result.stderr)")
                }
            } else {
                #expect(result.status == 0, "failed: \(line)\n\(result.stderr)")
            }
        }
        let all = transcript.joined(separator: "\n")
        // Spot-check the outcomes the walk-through promises.
        #expect(all.contains("Approval #1 is now approved."))
        #expect(all.contains("execution       succeeded") || all.contains("execution  succeeded") || all.contains("succeeded"))
        #expect(all.contains("review item  #2 in default (critical)"), "critical item must be claimed first")
        #expect(all.contains("Correction #1 recorded."))
        #expect(all.contains("auto_send: confidence 0.92"))
        #expect(all.contains("review: confidence 0.60 is below the threshold 0.80"))
        #expect(all.contains("review: could not read the self-rating"))
        #expect(all.contains("escalate: the user asked for a person"))
        #expect(all.contains("Escalation #1 resolved."))
        #expect(all.contains("2× replaced 30 with 14"), "both refund corrections should form one pattern:\n\(all)")
        #expect(all.contains("\"consensus\":\"positive\""))
    }

    @Test func serveStartsMigratesAndStopsCleanlyOnSIGINT() async throws {
        let binary = try BuiltProducts.executable("handoff")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let db = dir.file("serve.sqlite")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--database", db]
        process.currentDirectoryURL = URL(fileURLWithPath: dir.path)
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let log = Task { String(decoding: await readToEnd(err.fileHandleForReading), as: UTF8.self) }
        // Wait for the database to appear (created and migrated on first start).
        let started = Date()
        while !FileManager.default.fileExists(atPath: db), Date().timeIntervalSince(started) < 20 {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(process.isRunning, "serve exited on its own")
        kill(process.processIdentifier, SIGINT)
        let stopDeadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < stopDeadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        let output = await log.value
        #expect(process.terminationStatus == 0, "serve should exit 0 on Ctrl-C:\n\(output)")
        #expect(output.contains("scheduler started"))
        #expect(output.contains("stopped cleanly"))
        #expect(FileManager.default.fileExists(atPath: db))
    }

    @Test func overdueTimersFireOnceAfterRestart() async throws {
        let binary = try BuiltProducts.executable("handoff")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let env = [
            "HANDOFF_DATABASE": dir.file("timers.sqlite"),
            "HANDOFF_POLICY": BuiltProducts.packageRoot.appendingPathComponent("manifests/policies/handoff.example.yaml").path,
        ]
        for i in 1...3 {
            let r = try await runProcess(binary, ["feedback", "request", "--kind", "text", "--prompt", "q\(i)", "--deadline", "1s"],
                                         environment: env, directory: dir.path)
            #expect(r.status == 0, "\(r.stderr)")
        }
        try await Task.sleep(for: .milliseconds(1100))  // the deadlines pass while nothing runs
        let first = try await runProcess(binary, ["timers"], environment: env, directory: dir.path)
        #expect(first.stdout.contains("Fired 3 due timers."), "\(first.stdout)\(first.stderr)")
        let second = try await runProcess(binary, ["timers"], environment: env, directory: dir.path)
        #expect(second.stdout.contains("Fired 0 due timers."), "each timer fires once: \(second.stdout)")
        let rates = try await runProcess(binary, ["feedback", "rates", "--json"], environment: env, directory: dir.path)
        #expect(rates.stdout.contains("\"expired\" : 3"), Comment(rawValue: rates.stdout))
    }

    @Test func badPolicyFileIsRefusedWithEveryProblem() async throws {
        let binary = try BuiltProducts.executable("handoff")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let policy = dir.file("bad.yaml")
        try """
        groups:
          approvers: [cli:alice]
        approvals:
          default: { deciders: [approverz], quorum: 0 }
        routes:
          default: { queue: nowhere }
        """.write(toFile: policy, atomically: true, encoding: .utf8)
        let r = try await runProcess(binary, ["approvals", "list", "--policy-file", policy, "--database", dir.file("x.sqlite")])
        #expect(r.status == 2)
        #expect(r.stderr.contains("approverz"))
        #expect(r.stderr.contains("quorum must be at least 1"))
        #expect(r.stderr.contains("nowhere"))
    }
}
