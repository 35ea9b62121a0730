#pragma once
// A scripted SMTP relay on loopback that misbehaves on purpose, for tests of what the worker does
// when a relay will not cooperate. It speaks just enough SMTP for libcurl (greeting, EHLO, MAIL,
// RCPT, DATA, QUIT) over real sockets, a thread per connection, and records every byte it reads.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nudge::test {

class MisbehavingRelay {
 public:
  enum class Behaviour {
    // Answers until it has taken one message, then never again: not a byte more on any
    // connection, new ones included, and it keeps every connection open all the same.
    silent_after_one_message,
    // Answers every command, but reads at most 64 bytes every 50 ms (about 1.3 KB/s), with a
    // small receive buffer, so a sender's bytes queue up on the sender's side.
    slow_reader,
    // Answers every command at once but the end of a message's data, which it accepts (250)
    // only after kEndOfDataPause: a relay slow to queue mail.
    slow_end_of_data,
    // The same for the first message only; later ones are accepted at once.
    slow_first_end_of_data,
    // A connection left idle kIdleClose after a message gets "421 ... timeout exceeded" and is
    // closed, as Postfix closes idle sessions: a client that reuses it reads that 421 first.
    closes_idle_connections,
    // Refuses every connection at the greeting (554).
    refuses_greeting,
    // Refuses the sender (553 to MAIL FROM): this client may not send from its address.
    refuses_sender,
    // Refuses every recipient with a three-line 550 whose first lines say why.
    refuses_recipient_at_length,
    // Answers every recipient "421 4.7.28 ... rate limited" and closes: a domain's rate limit.
    rate_limits_recipients,
    // After a message taken on a connection, closes it without a word at the next command: a
    // relay restarted, or a proxy that recycles connections.
    hangs_up_after_a_message,
    // Greets and answers EHLO, then closes every connection without a word at MAIL FROM: a
    // relay crashing, or a proxy whose back end is gone.
    hangs_up_at_the_sender,
  };
  static constexpr auto kEndOfDataPause = std::chrono::milliseconds(1500);
  static constexpr auto kIdleClose = std::chrono::milliseconds(300);

  explicit MisbehavingRelay(Behaviour behaviour);
  ~MisbehavingRelay();  // closes every connection
  MisbehavingRelay(const MisbehavingRelay&) = delete;
  MisbehavingRelay& operator=(const MisbehavingRelay&) = delete;

  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }
  // Messages taken whole: ended by a lone "." and answered 250.
  int messages() const { return messages_; }
  // Every byte read so far, from every connection, in the order read.
  std::string received() const;
  // Connections the client has not closed yet.
  int open_connections() const;

 private:
  void accept_loop();
  void serve(int fd);
  // What to answer to one line from the client, updating the conversation's state.
  std::string answer(const std::string& line, bool& in_data, bool& quit);

  const Behaviour behaviour_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread accept_thread_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // by the destructor
  bool stopping_ = false;
  std::vector<int> fds_;  // every accepted connection; closed by the destructor only
  std::vector<std::thread> threads_;
  std::string received_;
  int open_ = 0;
  std::atomic<int> messages_{0};
  std::atomic<bool> silent_{false};
};

}  // namespace nudge::test
