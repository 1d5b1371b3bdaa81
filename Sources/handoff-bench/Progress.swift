import Foundation
import Synchronization

/// A progress bar on stderr for long set-ups: redrawn in place on a terminal (at most ten times a
/// second), one plain line per tenth when stderr is a file or pipe (CI logs stay readable).
final class ProgressBar: Sendable {
    private struct State {
        var done = 0
        var lastDraw = ContinuousClock.now - .seconds(1)
        var lastTenth = -1
        var finished = false
    }

    let title: String
    let total: Int
    private let interactive: Bool
    private let started = ContinuousClock.now
    private let state = Mutex(State())

    init(_ title: String, total: Int) {
        self.title = title
        self.total = max(1, total)
        interactive = isatty(STDERR_FILENO) == 1
    }

    /// Sets how much is done and redraws if it is time to.
    func update(_ done: Int) {
        let line: String? = state.withLock { s in
            guard !s.finished else { return nil }
            s.done = min(done, total)
            let now = ContinuousClock.now
            if interactive {
                guard now - s.lastDraw >= .milliseconds(100) || s.done == total else { return nil }
                s.lastDraw = now
                return "\r" + render(s.done, elapsed: now - started)
            }
            let tenth = s.done * 10 / total
            guard tenth > s.lastTenth, s.done > 0 else { return nil }
            s.lastTenth = tenth
            return render(s.done, elapsed: now - started) + "\n"
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    func advance(by n: Int) {
        let done = state.withLock { $0.done } + n
        update(done)
    }

    /// Draws the final state and ends the line.
    func finish() {
        let line: String? = state.withLock { s in
            guard !s.finished else { return nil }
            s.finished = true
            let text = render(s.done, elapsed: .now - started)
            return interactive ? "\r" + text + "\n" : (s.lastTenth == 10 ? nil : text + "\n")
        }
        if let line { FileHandle.standardError.write(Data(line.utf8)) }
    }

    private func render(_ done: Int, elapsed: Duration) -> String {
        let fraction = Double(done) / Double(total)
        let width = 30
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let seconds = elapsed.seconds
        var eta = ""
        if done > 0 && done < total && seconds > 1 {
            eta = String(format: ", %.0f s left", seconds / fraction - seconds)
        }
        let percent = String(format: "%3.0f%%", fraction * 100)
        return "\(title) [\(bar)] \(percent) \(Format.grouped(done))/\(Format.grouped(total)) (\(String(format: "%.1f", seconds)) s\(eta))"
    }
}
