import AsyncHTTPClient
import Crypto
import Foundation
import HandoffChatKit
import HandoffCore
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A person registered on the test homeserver.
package struct MatrixTestUser: Hashable, Sendable {
    package var userID: String
    package var localpart: String
    package var password: String
    package var accessToken: String
}

/// A real Synapse homeserver for tests: SQLite, 127.0.0.1 only, no federation, registration by shared
/// secret, a free port, data in a temporary directory. Started from the venv ``SynapseInstaller``
/// keeps; stopped by ``stop()`` — and, should the test process die first, by a small watchdog that
/// ends Synapse when its stdin (a pipe from this process) closes.
package final class SynapseServer: Sendable {
    package struct Configuration: Sendable {
        /// Rate limits high enough that tests never meet them; false keeps Synapse's default
        /// `rc_message` (0.2/s, burst 10) for the 429 test (logins, joins and registration stay relaxed).
        package var relaxedMessageRateLimit = true
        package var startTimeout: Duration = .seconds(90)

        package init() {}
    }

    /// How long the pieces took (for the report and the logs).
    package struct Timings: Sendable, CustomStringConvertible {
        package var install: Duration
        package var installedNow: Bool
        package var generateKeys: Duration
        package var start: Duration
        package var version: String

        package var description: String {
            "Synapse \(version): \(installedNow ? "installed" : "reused venv") in \(install), keys in \(generateKeys), ready in \(start)"
        }
    }

    package let serverName = "localhost"
    package let port: Int
    package let directory: TemporaryDirectory
    private let timingsBox: Mutex<Timings>
    let registrationSecret: String
    private let process: Process
    private let stdin: Pipe
    private let http: HTTPClient
    private let stopped = Mutex(false)

    package var timings: Timings { timingsBox.withLock { $0 } }

    /// `http://127.0.0.1:<port>`.
    package var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(port: Int, directory: TemporaryDirectory, timings: Timings, registrationSecret: String, process: Process, stdin: Pipe,
                 http: HTTPClient)
    {
        self.port = port
        self.directory = directory
        self.timingsBox = Mutex(timings)
        self.registrationSecret = registrationSecret
        self.process = process
        self.stdin = stdin
        self.http = http
    }

    /// Installs (once) and starts a homeserver; throws ``SynapseFailure`` with the reason when either fails.
    package static func start(_ configuration: Configuration = Configuration()) async throws -> SynapseServer {
        let installStarted = ContinuousClock.now
        let (python, version, installedNow) = try await SynapseInstaller.ensureInstalled()
        let installTook = ContinuousClock.now - installStarted
        let directory = try TemporaryDirectory(prefix: "handoff-synapse")
        let port = try freePort()
        let secret = "reg-" + UUID().uuidString
        let configPath = directory.file("homeserver.yaml")
        try homeserverYAML(directory: directory.path, port: port, registrationSecret: secret, configuration: configuration)
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        try logYAML(directory: directory.path).write(toFile: directory.file("log.yaml"), atomically: true, encoding: .utf8)
        try watchdog.write(toFile: directory.file("watchdog.py"), atomically: true, encoding: .utf8)

        let keysStarted = ContinuousClock.now
        let keys = try await runProcess(python, ["-m", "synapse.app.homeserver", "--config-path", configPath, "--generate-keys"],
                                        directory: directory.path, timeout: 120)
        guard keys.status == 0 else {
            directory.remove()
            throw SynapseFailure(description: "Synapse could not generate its keys: \(SynapseInstaller.tail(keys.stderr + keys.stdout))")
        }
        let keysTook = ContinuousClock.now - keysStarted

        let started = ContinuousClock.now
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [directory.file("watchdog.py"), configPath]
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        let log = directory.file("process.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = logHandle
        process.standardError = logHandle
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let timings = Timings(install: installTook, installedNow: installedNow, generateKeys: keysTook, start: .zero, version: version)
        let server = SynapseServer(port: port, directory: directory, timings: timings, registrationSecret: secret, process: process,
                                   stdin: stdin, http: http)
        let ready = await eventually(timeout: configuration.startTimeout, poll: .milliseconds(100)) {
            guard process.isRunning else { return true }
            return (try? await server.get("/_matrix/client/versions").status) == 200
        }
        guard ready, process.isRunning else {
            let why = !process.isRunning ? "exited with status \(process.terminationStatus)" : "was not ready within \(configuration.startTimeout)"
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let hsLog = (try? String(contentsOfFile: directory.file("homeserver.log"), encoding: .utf8)) ?? ""
            await server.stop(keepDirectory: true)
            throw SynapseFailure(description: "Synapse \(why) on 127.0.0.1:\(port): \(SynapseInstaller.tail(output + "\n" + hsLog)) (files in \(directory.path))")
        }
        let startTook = ContinuousClock.now - started
        server.timingsBox.withLock { $0.start = startTook }
        return server
    }

    /// Stops Synapse (the watchdog ends it when its stdin closes; a kill follows if it lingers) and
    /// removes its data. Safe to call twice.
    package func stop(keepDirectory: Bool = false) async {
        guard stopped.withLock({ s in defer { s = true }; return !s }) else { return }
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let exited = await eventually(timeout: .seconds(20), poll: .milliseconds(50)) { !process.isRunning }
        if !exited { kill(process.processIdentifier, SIGKILL) }
        // Synapse itself, should the watchdog have died first.
        if let pid = (try? String(contentsOfFile: directory.file("homeserver.pid"), encoding: .utf8)).flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }),
           kill(pid, 0) == 0
        {
            kill(pid, SIGTERM)
            if !(await eventually(timeout: .seconds(10), poll: .milliseconds(50)) { kill(pid, 0) != 0 }) { kill(pid, SIGKILL) }
        }
        try? await http.shutdown()
        if !keepDirectory { directory.remove() }
    }

    /// The homeserver's own log (for failure messages).
    package var log: String { (try? String(contentsOfFile: directory.file("homeserver.log"), encoding: .utf8)) ?? "" }

    // MARK: Users

    /// Registers a user with the shared-secret admin API (`/_synapse/admin/v1/register`, HMAC-SHA1).
    package func register(_ localpart: String, password: String = "pw-" + UUID().uuidString.prefix(12), admin: Bool = false) async throws -> MatrixTestUser {
        let nonceReply = try await get("/_synapse/admin/v1/register")
        guard let nonce = nonceReply.json?.member("nonce")?.asString else {
            throw SynapseFailure(description: "no registration nonce: HTTP \(nonceReply.status)")
        }
        var mac = HMAC<Insecure.SHA1>(key: SymmetricKey(data: Data(registrationSecret.utf8)))
        mac.update(data: Data((nonce + "\0" + localpart + "\0" + password + "\0" + (admin ? "admin" : "notadmin")).utf8))
        let hex = mac.finalize().map { String(format: "%02x", $0) }.joined()
        let body = JSONValue.object([
            "nonce": .string(nonce), "username": .string(localpart), "password": .string(password), "admin": .bool(admin), "mac": .string(hex),
        ])
        let reply = try await request("POST", "/_synapse/admin/v1/register", body: body)
        guard reply.status == 200, let user = reply.json?.member("user_id")?.asString, let token = reply.json?.member("access_token")?.asString else {
            throw SynapseFailure(description: "registering \(localpart) failed: HTTP \(reply.status) \(reply.text)")
        }
        return MatrixTestUser(userID: user, localpart: localpart, password: password, accessToken: token)
    }

    // MARK: HTTP

    package struct Reply: Sendable {
        package var status: Int
        package var text: String
        package var headers: [(String, String)]
        package var json: JSONValue? { try? JSONValue.parsePayload(text) }
    }

    func get(_ path: String) async throws -> Reply { try await request("GET", path) }

    /// One request to the homeserver (`token` authenticates as a user).
    package func request(_ method: String, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil, token: String? = nil,
                         timeout: Duration = .seconds(30)) async throws -> Reply
    {
        var url = baseURL + path
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .RAW(value: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.canonicalText))
        }
        let response = try await http.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
        let bytes = try await response.body.collect(upTo: 32 << 20)
        return Reply(status: Int(response.status.code), text: String(buffer: bytes), headers: response.headers.map { ($0.name, $0.value) })
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    package static func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s }

    // MARK: Files

    /// A port the kernel just handed out (bound and released), for Synapse's listener.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SynapseFailure(description: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw SynapseFailure(description: "bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw SynapseFailure(description: "getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func homeserverYAML(directory: String, port: Int, registrationSecret: String, configuration: Configuration) -> String {
        let relaxed = "{per_second: 1000, burst_count: 1000}"
        let message = configuration.relaxedMessageRateLimit ? "rc_message: \(relaxed)\n" : "# rc_message: Synapse's default (0.2/s, burst 10)\n"
        return """
            server_name: "localhost"
            pid_file: "\(directory)/homeserver.pid"
            listeners:
              - port: \(port)
                bind_addresses: ['127.0.0.1']
                type: http
                tls: false
                x_forwarded: false
                resources:
                  - names: [client]
                    compress: false
            database:
              name: sqlite3
              args:
                database: "\(directory)/homeserver.db"
            media_store_path: "\(directory)/media"
            signing_key_path: "\(directory)/localhost.signing.key"
            log_config: "\(directory)/log.yaml"
            registration_shared_secret: "\(registrationSecret)"
            macaroon_secret_key: "macaroon-\(UUID().uuidString)"
            form_secret: "form-\(UUID().uuidString)"
            report_stats: false
            trusted_key_servers: []
            suppress_key_server_warning: true
            federation_domain_whitelist: []
            enable_registration: false
            default_room_version: "11"
            # Fast password hashing: tests register and log in many users.
            bcrypt_rounds: 4
            \(message)rc_registration: \(relaxed)
            rc_login:
              address: \(relaxed)
              account: \(relaxed)
              failed_attempts: \(relaxed)
            rc_joins:
              local: \(relaxed)
              remote: \(relaxed)
            rc_invites:
              per_room: \(relaxed)
              per_user: \(relaxed)
              per_issuer: \(relaxed)
            rc_admin_redaction: \(relaxed)
            rc_room_creation: \(relaxed)

            """
    }

    static func logYAML(directory: String) -> String {
        """
        version: 1
        formatters:
          precise:
            format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s'
        handlers:
          file:
            class: logging.FileHandler
            formatter: precise
            filename: "\(directory)/homeserver.log"
        root:
          level: WARNING
          handlers: [file]
        disable_existing_loggers: false

        """
    }

    /// Runs Synapse as a child and ends it when stdin closes (the test process stopped it, or died).
    static let watchdog = """
        import subprocess, signal, sys, threading
        config = sys.argv[1]
        child = subprocess.Popen([sys.executable, "-m", "synapse.app.homeserver", "--config-path", config])
        def stop(*_):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(3)
                except subprocess.TimeoutExpired:
                    child.kill()
        def watch():
            try:
                while sys.stdin.buffer.read(1):
                    pass
            except Exception:
                pass
            stop()
        threading.Thread(target=watch, daemon=True).start()
        signal.signal(signal.SIGTERM, stop)
        sys.exit(child.wait())

        """
}
