import Hummingbird
import HummingbirdWebSocket
import HummingbirdWSClient
import Mustache
import AsyncHTTPClient
import Yams
import Prometheus
import ServiceLifecycle
import Crypto
package enum HandoffAppPlaceholder {}
