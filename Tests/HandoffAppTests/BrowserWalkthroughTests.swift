import Foundation
import HandoffApp
import HandoffCore
import HandoffTesting
import Testing

/// A real browser (Debian's chromium, headless, over the DevTools protocol) works the dashboard the way
/// a reviewer would; the results are checked through the API. Screenshots go to test-artifacts/.
@Suite(.serialized) struct BrowserWalkthroughTests {
    static let artifacts = BuiltProducts.packageRoot.appendingPathComponent("test-artifacts").path

    @Test(.timeLimit(.minutes(10))) func signInDecideReviewAndLabelInChromium() async throws {
        try await withTestApp { app in
            let k = try await app.keys()
            _ = try await app.post("/v1/approvals", key: k.agent,
                                   #"{"action":"refund","arguments":{"order":"A-1001","amount":49.5},"summary":"Refund order A-1001 <b>now</b>"}"#)
            _ = try await app.post("/v1/review-items", key: k.agent,
                                   #"{"priority":"high","query":"How long is the refund window?","answer":"30 days","confidence":0.42,"reason":"low confidence"}"#)
            _ = try await app.post("/v1/label-tasks", key: k.agent,
                                   #"{"dataset":"sentiment","type":"choice","options":["positive","negative"],"content":"The support team was great","instructions":"Is the customer happy?"}"#)
            _ = try await app.post("/v1/escalations", key: k.agent, #"{"query":"I want to talk to a human about my invoice"}"#)
            _ = try await app.post("/v1/label-tasks", key: k.agent,
                                   #"{"dataset":"names","type":"span","content":"Alice met Bob in Zürich","instructions":"Select the second person"}"#)

            let browser = try await HeadlessChromium.launch()
            do {
                let page = try await browser.newPage()
                func shot(_ name: String) async throws { try await page.screenshot(to: "\(Self.artifacts)/\(name).png") }

                // Sign in.
                try await page.go(app.base + "/")
                #expect(try await page.url.contains("/login"), "anonymous visitors are sent to sign in")
                try await shot("01-login")
                try await page.type("#key", k.alice)
                try await page.click("#sign-in")
                #expect(try await page.text("h1") == "Overview")
                #expect(try await page.text("header").contains("key:alice"))
                #expect(try await page.text("#pending-count") == "1")
                try await shot("02-overview")

                // Decide an approval.
                try await page.go(app.base + "/approvals")
                try await shot("03-approvals")
                try await page.go(app.base + "/approvals/1")
                #expect(try await page.text("#arguments").contains("A-1001"))
                #expect(try await page.html.contains("Refund order A-1001 &lt;b&gt;now&lt;/b&gt;"), "untrusted text stays text")
                try await page.type("#comment", "Checked the order, refund is fine")
                try await shot("04-approval")
                try await page.click("#approve")
                #expect(try await page.text(".notice").contains("is now approved"))
                let approval = try await app.get("/v1/approvals/1", key: k.agent).json
                #expect(approval["status"]?.string == "approved")
                #expect(approval["decision"]?["by"]?[0]?.string == "key:alice")
                #expect(approval["decision"]?["comment"]?.string == "Checked the order, refund is fine")

                // Claim and submit a review item.
                try await page.go(app.base + "/reviews")
                try await shot("05-reviews")
                try await page.click(".claim-next")
                #expect(try await page.url.hasSuffix("/reviews/1"))
                #expect(try await page.text("#review-answer") == "30 days")
                try await page.evaluate("document.querySelector('#verdict-rejected').click()")
                try await page.type("#feedback", "The policy changed in March")
                try await page.type("#corrected_answer", "14 days")
                try await shot("06-review-item")
                try await page.click("#submit-review")
                #expect(try await page.text(".notice").contains("Correction #1 recorded"))
                let item = try await app.get("/v1/review-items/1", key: k.agent).json
                #expect(item["status"]?.string == "completed")
                #expect(item["reviews"]?[0]?["reviewer"]?.string == "key:alice")
                #expect(item["reviews"]?[0]?["verdict"]?.string == "rejected")
                #expect(item["reviews"]?[0]?["corrected_answer"]?.string == "14 days")

                // Label a task with the keyboard shortcut.
                try await page.go(app.base + "/labeling")
                #expect(try await page.text("#instructions") == "Is the customer happy?")
                #expect(try await page.text("#progress").contains("0 of 1"))
                try await shot("07-labeling")
                try await page.waitingForLoad { try await page.press("1") }
                #expect(try await page.text(".notice").contains("as positive"))
                let consensus = try await app.get("/v1/label-tasks/1/consensus", key: k.agent).json
                #expect(consensus["labels"]?[0]?["labeler"]?.string == "key:alice")
                #expect(consensus["consensus"]?.string == "positive")

                // Select a span with the mouse selection API; the page turns it into offsets.
                try await page.go(app.base + "/labeling?dataset=names")
                try await page.evaluate("""
                    (function () {
                      var node = document.getElementById('span-content').firstChild;
                      var range = document.createRange();
                      range.setStart(node, node.textContent.indexOf('Bob'));
                      range.setEnd(node, node.textContent.indexOf('Bob') + 3);
                      var selection = window.getSelection();
                      selection.removeAllRanges();
                      selection.addRange(range);
                    })()
                    """)
                var filled = ""
                for _ in 0..<100 where filled != "10-13" {
                    try await Task.sleep(for: .milliseconds(20))
                    filled = try await page.evaluate("document.getElementById('start').value + '-' + document.getElementById('end').value") as? String ?? ""
                }
                #expect(filled == "10-13", "the selection fills the offsets")
                #expect(try await page.text("#selected").contains("Bob"))
                try await shot("08-labeling-span")
                try await page.click("#label-form button[type=submit]")
                let span = try await app.get("/v1/label-tasks/2/consensus", key: k.agent).json
                #expect(span["consensus"]?["start"]?.int == 10)
                #expect(span["consensus"]?["end"]?.int == 13)

                try await page.go(app.base + "/escalations")
                try await shot("09-escalations")
                try await page.go(app.base + "/stats")
                #expect(try await page.evaluate("document.querySelectorAll('svg.chart').length") as? Int == 3)
                try await shot("10-stats")
                try await page.go(app.base + "/")
                try await shot("11-overview-after")
            } catch {
                await browser.close()
                throw error
            }
            await browser.close()
            for name in ["01-login", "02-overview", "04-approval", "07-labeling", "08-labeling-span", "10-stats"] {
                let size = (try? FileManager.default.attributesOfItem(atPath: "\(Self.artifacts)/\(name).png")[.size] as? Int) ?? 0
                #expect(size > 1000, "screenshot \(name).png was saved")
            }
        }
    }
}
