#include "support/smtp_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace nudge::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kServerScript = R"PY(
import asyncio, email, email.policy, json, os, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

port, out_path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]

# starttls-auth: a login (user, hunter2) is offered after STARTTLS; starttls-noauth: AUTH is
# never offered.
def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b'user' \
        and auth_data.password == b'hunter2'
    return AuthResult(success=ok, handled=False)

class Handler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if mode == 'starttls-noauth':
            responses = [r for r in responses if not r[4:].startswith('AUTH')]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if mode == 'reject':
            return '550 no such user'
        if mode == 'greylist':
            return '451 4.7.1 greylisted, try again later'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        headers = {}
        for name, value in msg.items():
            headers.setdefault(name.lower(), []).append(str(value))
        record = {
            'mail_from': envelope.mail_from,
            'rcpt_tos': envelope.rcpt_tos,
            'headers': headers,
            'body': msg.get_content(),
            'defects': [repr(d) for d in msg.defects],
            'raw': raw.decode('latin-1'),
            'authenticated': bool(session.authenticated),
        }
        with open(out_path, 'a') as f:
            f.write(json.dumps(record) + '\n')
        return '250 2.0.0 Ok: queued'

async def main():
    loop = asyncio.get_running_loop()
    tls = None
    if mode.startswith('starttls'):
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(os.path.join(os.path.dirname(out_path), 'relay-cert.pem'),
                            os.path.join(os.path.dirname(out_path), 'relay-key.pem'))
    server = await loop.create_server(
        lambda: SMTP(Handler(), hostname='smtp.test', tls_context=tls,
                     require_starttls=tls is not None,
                     authenticator=authenticator if mode == 'starttls-auth' else None),
        '127.0.0.1', port)
    async with server:
        await server.serve_forever()

asyncio.run(main())
)PY";

bool can_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

SmtpTestServer::SmtpTestServer(const std::filesystem::path& dir, const std::string& mode)
    : port_(free_tcp_port()) {
  const auto script = dir / "smtp_server.py";
  std::ofstream(script) << kServerScript;
  messages_path_ = (dir / ("messages-" + mode + ".jsonl")).string();
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{kPython, script.string(), std::to_string(port_), messages_path_,
                               mode},
      std::map<std::string, std::string>{{"PYTHONDONTWRITEBYTECODE", "1"}},
      (dir / ("smtp-" + mode + ".log")).string());
}

bool SmtpTestServer::wait_ready(std::string& why) {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) {
      why = "the SMTP server exited:\n" + process_->log();
      return false;
    }
    if (can_connect(port_)) return true;
    std::this_thread::sleep_for(20ms);
  }
  why = "the SMTP server did not listen in time:\n" + process_->log();
  return false;
}

std::vector<json> SmtpTestServer::messages() const {
  std::ifstream in(messages_path_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  all.erase(all.rfind('\n') == std::string::npos ? 0 : all.rfind('\n') + 1);
  std::vector<json> out;
  std::istringstream lines(all);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string smtp_header(const json& message, const std::string& name) {
  const auto& headers = message.at("headers");
  if (!headers.contains(name)) return "<missing " + name + ">";
  return headers.at(name).at(0).get<std::string>();
}

}  // namespace nudge::test
