import Foundation

/// The machine a run measured, printed with every run and kept in the JSON: numbers mean little without it.
struct MachineInfo: Codable, Sendable {
    var cores: Int
    var cpu: String
    var memoryGiB: Double
    var kernel: String
    /// The directory holding the benchmark's databases, with its device and file system.
    var directory: String
    var filesystem: String
    var loadAverage: String
    var build: String
    var sqliteVersion: String?

    static func current(directory: String, sqliteVersion: String?) -> MachineInfo {
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown"
        let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "")
            .split(separator: " ").prefix(3).joined(separator: " ")
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        return MachineInfo(
            cores: ProcessInfo.processInfo.activeProcessorCount, cpu: model,
            memoryGiB: (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
            kernel: "Linux \(release)", directory: directory, filesystem: Self.filesystem(of: directory),
            loadAverage: load, build: build, sqliteVersion: sqliteVersion)
    }

    /// "ext4 on /dev/vda (mounted at /, rw,relatime)" for the mount holding `path`.
    static func filesystem(of path: String) -> String {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let mounts = ((try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? "").split(separator: "\n")
        var best: (point: String, line: String)?
        for line in mounts {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 4 else { continue }
            let point = f[1]
            let inside = point == "/" || resolved == point || resolved.hasPrefix(point + "/")
            if inside, point.count >= (best?.point.count ?? -1) {
                best = (point, "\(f[2]) on \(f[0]) (mounted at \(point), \(f[3]))")
            }
        }
        return best?.line ?? "unknown"
    }

    var lines: [String] {
        [
            "machine: \(cores) cores, \(cpu), \(String(format: "%.1f", memoryGiB)) GiB, \(kernel)",
            "disk:    \(filesystem); databases in \(directory)",
            "build:   \(build)\(sqliteVersion.map { ", SQLite \($0)" } ?? ""); load average at start \(loadAverage)",
        ]
    }
}

/// The process's resident memory, from /proc/self/statm (pages × page size).
func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = statm.split(separator: " ")
    guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// The anonymous part of resident memory (heap, stacks; not the mapped binary and libraries), from /proc/self/status.
func anonymousResidentBytes() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return 0 }
    return kb * 1024
}
