import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why a browser test could not run or a browser command failed.
package struct BrowserFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Debian's `chromium`, headless, driven over the Chrome DevTools Protocol through a pipe pair
/// (`--remote-debugging-pipe`: commands on fd 3, replies on fd 4, NUL-delimited JSON). A pipe has no
/// frame-size limit and needs no WebSocket client.
package final class HeadlessChromium: Sendable {
    /// Installs Debian's `chromium` when it is missing (`apt-get update` + `apt-get install -y chromium`;
    /// the tests run as root). Throws with a clear message when that is impossible — browser tests never skip.
    package static func ensureInstalled() async throws -> String {
        if let path = executable() { return path }
        let apt = "/usr/bin/apt-get"
        guard FileManager.default.isExecutableFile(atPath: apt) else {
            throw BrowserFailure("chromium is not installed and apt-get is not available to install it; install Debian's `chromium` package")
        }
        let env = ["DEBIAN_FRONTEND": "noninteractive"]
        let update = try await runProcess(apt, ["update"], environment: env, timeout: 600)
        guard update.status == 0 else {
            throw BrowserFailure("chromium is missing and `apt-get update` failed (\(update.status)); run the tests as root with network access, or install `chromium`:\n\(update.stderr.suffix(2000))")
        }
        let install = try await runProcess(apt, ["install", "-y", "chromium"], environment: env, timeout: 1200)
        guard install.status == 0, let path = executable() else {
            throw BrowserFailure("could not install chromium with `apt-get install -y chromium` (\(install.status)):\n\(install.stderr.suffix(2000))")
        }
        return path
    }

    static func executable() -> String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    private struct State {
        var nextID = 0
        var pending: [Int: CheckedContinuation<Data, any Error>] = [:]
        var events: [(method: String, sessionID: String?)] = []
        var closed = false
    }

    private let state = Mutex(State())
    private let commandFD: Int32
    private let replyFD: Int32
    package let pid: pid_t
    let profile: String

    private init(pid: pid_t, commandFD: Int32, replyFD: Int32, profile: String) {
        self.pid = pid
        self.commandFD = commandFD
        self.replyFD = replyFD
        self.profile = profile
    }

    /// Starts a headless browser with an empty profile.
    package static func launch(windowSize: (Int, Int) = (1280, 900)) async throws -> HeadlessChromium {
        let path = try await ensureInstalled()
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("handoff-chromium-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        var commands: [Int32] = [0, 0]
        var replies: [Int32] = [0, 0]
        guard pipe(&commands) == 0, pipe(&replies) == 0 else { throw BrowserFailure("pipe failed: \(errno)") }
        for fd in commands + replies { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // Keep the originals above fd 4 so the dup2 onto 3 and 4 in the child never collides with them.
        let childRead = fcntl(commands[0], F_DUPFD_CLOEXEC, 10)
        let childWrite = fcntl(replies[1], F_DUPFD_CLOEXEC, 10)
        Glibc.close(commands[0])
        Glibc.close(replies[1])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, childRead, 3)
        posix_spawn_file_actions_adddup2(&actions, childWrite, 4)
        let log = profile + "/chromium.log"
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        let arguments = [
            path, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-pipe",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--disable-sync", "--mute-audio", "--hide-scrollbars", "--user-data-dir=\(profile)",
            "--window-size=\(windowSize.0),\(windowSize.1)", "about:blank",
        ]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = profile
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, &argv, &envp)
        Glibc.close(childRead)
        Glibc.close(childWrite)
        guard spawned == 0 else {
            Glibc.close(commands[1])
            Glibc.close(replies[0])
            throw BrowserFailure("could not start \(path): posix_spawn returned \(spawned)")
        }
        let browser = HeadlessChromium(pid: pid, commandFD: commands[1], replyFD: replies[0], profile: profile)
        browser.startReader()
        // The browser answers once it is ready.
        _ = try await browser.send("Browser.getVersion", timeout: .seconds(60))
        return browser
    }

    private func startReader() {
        let fd = replyFD
        let thread = Thread { [self] in
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                buffer.append(contentsOf: chunk[0..<n])
                while let end = buffer.firstIndex(of: 0) {
                    let message = Array(buffer[..<end])
                    buffer.removeSubrange(...end)
                    self.dispatch(message)
                }
            }
            self.failAll(BrowserFailure("the browser closed its DevTools pipe"))
        }
        thread.start()
    }

    private func dispatch(_ bytes: [UInt8]) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else { return }
        if let id = object["id"] as? Int {
            let continuation = state.withLock { $0.pending.removeValue(forKey: id) }
            if let error = object["error"] as? [String: Any] {
                continuation?.resume(throwing: BrowserFailure("DevTools error: \(error["message"] ?? error)"))
            } else {
                let result = (try? JSONSerialization.data(withJSONObject: (object["result"] as? [String: Any]) ?? [:])) ?? Data("{}".utf8)
                continuation?.resume(returning: result)
            }
        } else if let method = object["method"] as? String {
            state.withLock { $0.events.append((method, object["sessionId"] as? String)) }
        }
    }

    private func failAll(_ error: any Error) {
        let pending = state.withLock { s -> [CheckedContinuation<Data, any Error>] in
            s.closed = true
            defer { s.pending = [:] }
            return Array(s.pending.values)
        }
        for continuation in pending { continuation.resume(throwing: error) }
    }

    /// Sends a DevTools command and returns its result.
    @discardableResult
    package func send(_ method: String, _ params: [String: Any] = [:], session: String? = nil, timeout: Duration = .seconds(30)) async throws
        -> [String: Any]
    {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        var encoded = try JSONSerialization.data(withJSONObject: message)
        encoded.append(0)
        let data = encoded
        let fd = commandFD
        let reply = try await withThrowingTaskGroup(of: Data.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    let closed = self.state.withLock { s -> Bool in
                        if s.closed { return true }
                        s.pending[id] = continuation
                        return false
                    }
                    if closed { return continuation.resume(throwing: BrowserFailure("the browser is gone")) }
                    let written = data.withUnsafeBytes { raw -> Bool in
                        var offset = 0
                        while offset < raw.count {
                            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                            if n <= 0 { return false }
                            offset += n
                        }
                        return true
                    }
                    if !written, let c = self.state.withLock({ $0.pending.removeValue(forKey: id) }) {
                        c.resume(throwing: BrowserFailure("could not write to the DevTools pipe"))
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                if let c = self.state.withLock({ $0.pending.removeValue(forKey: id) }) {
                    c.resume(throwing: BrowserFailure("\(method) got no answer within \(timeout)"))
                }
                throw BrowserFailure("\(method) timed out")
            }
            let result = try await group.next()!
            group.cancelAll()
            return result
        }
        return ((try? JSONSerialization.jsonObject(with: reply)) as? [String: Any]) ?? [:]
    }

    /// How many times an event arrived (for a session), to wait for the next one.
    package func eventCount(_ method: String, session: String?) -> Int {
        state.withLock { $0.events.filter { $0.method == method && $0.sessionID == session }.count }
    }

    /// Waits until the event has arrived more than `after` times.
    package func waitForEvent(_ method: String, session: String?, after: Int, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while eventCount(method, session: session) <= after {
            guard ContinuousClock.now < deadline else { throw BrowserFailure("no \(method) within \(timeout)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Opens a tab and returns a page driver for it.
    package func newPage() async throws -> BrowserPage {
        let target = try await send("Target.createTarget", ["url": "about:blank"])
        guard let targetID = target["targetId"] as? String else { throw BrowserFailure("no target id") }
        let attached = try await send("Target.attachToTarget", ["targetId": targetID, "flatten": true])
        guard let session = attached["sessionId"] as? String else { throw BrowserFailure("no session id") }
        let page = BrowserPage(browser: self, session: session)
        try await page.command("Page.enable")
        try await page.command("Runtime.enable")
        return page
    }

    /// Closes the browser and waits for the process (killing it, by its pid, if it does not exit).
    package func close() async {
        _ = try? await send("Browser.close", timeout: .seconds(5))
        let deadline = ContinuousClock.now + .seconds(10)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if ContinuousClock.now > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        Glibc.close(commandFD)
        Glibc.close(replyFD)
        try? FileManager.default.removeItem(atPath: profile)
    }
}

/// One tab: navigate, run JavaScript, press keys, take screenshots.
package struct BrowserPage: Sendable {
    let browser: HeadlessChromium
    let session: String

    @discardableResult
    package func command(_ method: String, _ params: [String: Any] = [:]) async throws -> [String: Any] {
        try await browser.send(method, params, session: session)
    }

    /// Runs `action` and waits for the page load it causes (navigation or form submission).
    package func waitingForLoad(_ action: () async throws -> Void) async throws {
        let before = browser.eventCount("Page.loadEventFired", session: session)
        try await action()
        try await browser.waitForEvent("Page.loadEventFired", session: session, after: before)
    }

    package func go(_ url: String) async throws {
        try await waitingForLoad { try await command("Page.navigate", ["url": url]) }
    }

    /// Evaluates JavaScript and returns its value (strings, numbers, booleans, arrays, objects).
    @discardableResult
    package func evaluate(_ expression: String) async throws -> Any? {
        let result = try await command("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] as? [String: Any] {
            throw BrowserFailure("JavaScript failed: \(exception["text"] ?? "") \((exception["exception"] as? [String: Any])?["description"] ?? "")")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    package func text(_ selector: String) async throws -> String {
        (try await evaluate("(document.querySelector(\(Self.quote(selector)))||{}).innerText||''") as? String) ?? ""
    }

    package var url: String { get async throws { (try await evaluate("location.href") as? String) ?? "" } }
    package var html: String { get async throws { (try await evaluate("document.documentElement.outerHTML") as? String) ?? "" } }

    /// Types into a field the way a person would (focus, then text input events).
    package func type(_ selector: String, _ text: String) async throws {
        guard try await evaluate("(function(){var e=document.querySelector(\(Self.quote(selector)));if(!e)return false;e.focus();e.value='';return true})()")
            as? Bool == true
        else { throw BrowserFailure("no field \(selector)") }
        try await command("Input.insertText", ["text": text])
    }

    /// Clicks an element and waits for the page it loads.
    package func click(_ selector: String) async throws {
        try await waitingForLoad {
            guard try await evaluate("(function(){var e=document.querySelector(\(Self.quote(selector)));if(!e)return false;e.click();return true})()")
                as? Bool == true
            else { throw BrowserFailure("nothing to click at \(selector)") }
        }
    }

    /// Presses a key (keyDown with its text, keyUp), as a keyboard shortcut would be pressed.
    package func press(_ key: String) async throws {
        try await command("Input.dispatchKeyEvent", ["type": "keyDown", "key": key, "text": key])
        try await command("Input.dispatchKeyEvent", ["type": "keyUp", "key": key])
    }

    /// Saves a full-page PNG screenshot.
    package func screenshot(to path: String) async throws {
        let shot = try await command("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": true])
        guard let base64 = shot["data"] as? String, let data = Data(base64Encoded: base64) else { throw BrowserFailure("no screenshot data") }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
    }

    static func quote(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}
