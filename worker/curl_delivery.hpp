#pragma once
// What the network channels share once a delivery's request is built: a libcurl handle set up
// for it, handed to Transfers, and its outcome reported exactly once.

#include <curl/curl.h>

#include <functional>
#include <string>

#include "channel.hpp"
#include "transfers.hpp"

namespace nudge {

// What went wrong with a transfer that ended with `result`, libcurl's error buffer `detail`
// included: "Couldn't connect to server: Failed to connect to h port 1 after 0 ms" (libcurl's
// buffer often ends with the text of `result` again: it is said once).
std::string curl_error_text(CURLcode result, const char* detail);

// Creates an easy handle, lets `configure` set it up and starts it on `transfers`; when it ends,
// `done` gets `outcome(result, handle)`. Any failure before that (no handle, a setup error,
// add() throwing) goes to `done` instead, its text passed through `mask` so no secret shows.
// `done` is called exactly once (or never, when Transfers is destroyed with the transfer in
// flight). `outcome` should hold the delivery's per-transfer data (the handle points into
// it): Transfers keeps it until it has cleaned up the handle. `configure` and `mask` are only
// called before this returns. `policy`, if given, limits what the transfer connects to
// (Transfers::add); it should live in the same data as `outcome`.
void start_curl_delivery(Transfers& transfers, DeliveryDone done,
                         const std::function<CURLcode(CURL*)>& configure,
                         std::function<Delivery(CURLcode, CURL*)> outcome,
                         const std::function<std::string(std::string)>& mask,
                         ConnectPolicy* policy = nullptr);

// The same, with the transfer on a lane of `home` (Transfers::spawn), for a protocol libcurl may
// block inside: `configure` still runs here, `outcome` on the lane once the transfer has ended
// (or was never started), and `done` back on the thread that runs `home` (from
// Transfers::run() or abort_all()). A transfer that did not deliver leaves no connection kept.
void start_curl_delivery_on_lane(Transfers& home, DeliveryDone done,
                                 const std::function<CURLcode(CURL*)>& configure,
                                 std::function<Delivery(CURLcode, CURL*)> outcome,
                                 std::function<std::string(std::string)> mask);

}  // namespace nudge
