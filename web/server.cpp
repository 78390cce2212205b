#include "web/server.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <mutex>
#include <random>
#include <tuple>
#include <utility>

#include "cloak/core/error.h"
#include "cloak/engine/decoys.h"
#include "cloak/engine/settings.h"
#include "cloak/pipeline/settings_listing.h"

namespace cloak::web {

extern const char* const kPage;  // page.html, compiled in (web/CMakeLists.txt)

namespace {

using httplib::Request;
using httplib::Response;

std::string new_token() {
  std::random_device device;
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 32; ++i) token += hex[device() % 16];
  return token;
}

// Compares without stopping at the first difference, so that timing does not reveal the token.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned>(a[i] ^ b[i]);
  return diff == 0;
}

void send_json(Response& res, const nlohmann::json& j, int status = 200) {
  res.status = status;
  // Names are UTF-8 by upload_name; should any other text not be, it is shown replaced, never a
  // 500.
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

void send_error(Response& res, int status, const std::string& message) {
  send_json(res, {{"error", message}}, status);
}

// The download's name as RFC 6266 gives it: an ASCII fallback, and the UTF-8 name percent-encoded.
void send_file(Response& res, const Download& d, bool attachment) {
  res.set_content(reinterpret_cast<const char*>(d.bytes.data()), d.bytes.size(), d.content_type);
  std::string ascii, encoded;
  for (const char c : d.filename) {
    const auto u = static_cast<unsigned char>(c);
    ascii += u < 0x20 || u >= 0x7F || c == '"' || c == '\\' ? '_' : c;
    if ((u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') ||
        (c != 0 && std::strchr("-._~", c))) {
      encoded += c;
    } else {
      static const char* hex = "0123456789ABCDEF";
      encoded += {'%', hex[u >> 4], hex[u & 15]};
    }
  }
  res.set_header("Content-Disposition", std::string(attachment ? "attachment" : "inline") +
                                            "; filename=\"" + ascii + "\"; filename*=UTF-8''" +
                                            encoded);
}

std::string field(const Request& req, const std::string& name) {
  return req.has_file(name) ? req.get_file_value(name).content : "";
}

template <class Choice, std::size_t N>
decltype(Choice::value) choose(const Request& req, const std::string& name,
                               const Choice (&table)[N], decltype(Choice::value) fallback) {
  const std::string value = field(req, name);
  if (value.empty()) return fallback;
  const auto v = from_name(table, value);
  if (!v)
    throw Error(ErrorKind::Usage, name + ": '" + value + "' is not one of " + names_of(table));
  return *v;
}

std::vector<std::uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

// An uploaded image's bytes and cleaned name; decoded once to refuse a bad file up front (one at a
// time, so that parallel uploads hold at most one decoded picture), then only the bytes are kept.
std::pair<std::string, std::vector<std::uint8_t>> checked_upload(
    const httplib::MultipartFormData& f, const ReadOptions& read) {
  static std::mutex one_at_a_time;
  std::pair<std::string, std::vector<std::uint8_t>> upload{upload_name(f.filename),
                                                           bytes_of(f.content)};
  std::lock_guard<std::mutex> lock(one_at_a_time);
  decode_image(upload.second, upload.first, read);
  return upload;
}

// The job a POST /api/jobs describes. Throws cloak::Error (Input or Usage) with the one line the
// page shows.
JobRequest job_request(const Request& req, const FileJob& defaults) {
  if (!req.has_file("file") || req.get_file_value("file").filename.empty())
    throw Error(ErrorKind::Usage, "no image: send it as the multipart field 'file'");
  JobRequest rq;
  rq.job = defaults;
  auto& s = rq.job.settings;
  s.mode = choose(req, "mode", kModes, s.mode);
  s.strength = choose(req, "strength", kStrengths, s.strength);
  s.preset = choose(req, "preset", kPresets, s.preset);
  s.invisible_at = choose(req, "invisible_at", kInvisibleAt, s.invisible_at);
  if (const std::string decoy = field(req, "decoy"); !decoy.empty()) {
    const auto& known = decoy_names();
    if (std::find(known.begin(), known.end(), decoy) == known.end())
      throw Error(ErrorKind::Usage, "decoy: '" + decoy + "' is not a built-in decoy");
    s.decoy = decoy;
  }
  if (const std::string seed = field(req, "seed"); !seed.empty()) {
    if (seed.find_first_not_of("0123456789") != std::string::npos || seed.size() > 19)
      throw Error(ErrorKind::Usage, "seed: '" + seed + "' is not a whole number");
    s.seed = std::stoull(seed);
  }
  if (req.has_file("target") && !req.get_file_value("target").filename.empty())
    std::tie(rq.target_name, rq.target_bytes) =
        checked_upload(req.get_file_value("target"), defaults.read);
  if (s.mode == Mode::Poison && rq.target_bytes.empty())
    throw Error(ErrorKind::Usage, "poison mode needs a target image of another concept");
  std::tie(rq.name, rq.bytes) = checked_upload(req.get_file_value("file"), defaults.read);
  return rq;
}

// The job number in the path; 0 (no job has it) when it is too large to be one.
int job_id(const Request& req) {
  int id = 0;
  const std::string digits = req.matches[1].str();
  std::from_chars(digits.data(), digits.data() + digits.size(), id);
  return id;
}

// The page with a fresh nonce for its script, and the policy that lets only that script run.
void send_page(Response& res) {
  const std::string nonce = new_token();
  std::string page = kPage;
  const std::string mark = "CLOAK_NONCE";
  page.replace(page.find(mark), mark.size(), nonce);
  res.set_content(page, "text/html; charset=utf-8");
  res.headers.erase("Content-Security-Policy");  // replaces the default one
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' blob:; style-src 'unsafe-inline'; "
                 "script-src 'nonce-" +
                     nonce +
                     "'; frame-ancestors 'none'; base-uri 'none'; "
                     "form-action 'none'");
}

}  // namespace

Server::Server(JobQueue& jobs, ServeOptions options)
    : jobs_(jobs), options_(std::move(options)), token_(new_token()) {
  http_.set_payload_max_length(options_.max_upload_bytes);
  // Every answer: not to be cached, sniffed, framed or told where it came from.
  http_.set_default_headers(
      {{"Cache-Control", "no-store"},
       {"X-Content-Type-Options", "nosniff"},
       {"Referrer-Policy", "no-referrer"},
       {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"}});
  http_.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
    send_error(res, 500, "internal error");  // never the exception's text in a header
  });
  http_.set_pre_routing_handler([this](const Request& req, Response& res) {
    HttpServer::headers_received();
    if (allowed(req)) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, 403, "forbidden: open the address cloak serve printed (it carries the token)");
    return httplib::Server::HandlerResponse::Handled;
  });
  routes();
}

bool Server::allowed(const Request& req) const {
  const std::string host = req.get_header_value("Host");
  const std::string port = ":" + std::to_string(port_);
  if (host != "127.0.0.1" + port && host != "localhost" + port) return false;
  const std::string token = req.has_header("X-Cloak-Token") ? req.get_header_value("X-Cloak-Token")
                                                            : req.get_param_value("token");
  return same_secret(token, token_);
}

void Server::routes() {
  http_.Get("/", [](const Request&, Response& res) { send_page(res); });
  http_.Get("/api/settings",
            [](const Request&, Response& res) { send_json(res, settings_listing()); });
  http_.Post("/api/jobs", [this](const Request& req, Response& res) {
    try {
      send_json(res, {{"id", jobs_.add(job_request(req, options_.defaults))}}, 201);
    } catch (const QueueFull& e) {
      res.set_header("Retry-After", "30");
      send_error(res, 503, e.what());
    } catch (const std::exception& e) {
      const std::string what = e.what();
      send_error(res, 400, what.substr(0, what.find('\n')));
    }
  });
  http_.Get("/api/jobs", [this](const Request&, Response& res) { send_json(res, jobs_.list()); });
  http_.Delete("/api/jobs", [this](const Request&, Response& res) {
    jobs_.cancel_all();
    send_json(res, {{"cancelled", "all"}});
  });
  http_.Get(R"(/api/jobs/(\d+))", [this](const Request& req, Response& res) {
    if (auto s = jobs_.status(job_id(req)))
      send_json(res, *s);
    else
      send_error(res, 404, "no such job");
  });
  http_.Delete(R"(/api/jobs/(\d+))", [this](const Request& req, Response& res) {
    switch (jobs_.cancel(job_id(req))) {
      case CancelResult::Cancelled:
        return send_json(res, *jobs_.status(job_id(req)));
      case CancelResult::TooLate:
        return send_error(res, 409, "too late: the job has finished");
      case CancelResult::Unknown:
        break;
    }
    send_error(res, 404, "no such job");
  });
  http_.Get(R"(/api/jobs/(\d+)/result)", [this](const Request& req, Response& res) {
    if (auto f = jobs_.file(job_id(req), "result"))
      send_file(res, *f, true);
    else
      send_error(res, 404, "no result (yet)");
  });
  http_.Get(R"(/api/jobs/(\d+)/view/([a-z-]+\.png))", [this](const Request& req, Response& res) {
    if (auto f = jobs_.file(job_id(req), req.matches[2].str()))
      send_file(res, *f, false);
    else
      send_error(res, 404, "no such view (yet)");
  });
  http_.Get("/api/results.zip", [this](const Request&, Response& res) {
    const Download zip = jobs_.results_zip();
    if (zip.bytes.empty())
      send_error(res, 404, "no finished results yet");
    else
      send_file(res, zip, true);
  });
}

int Server::bind(int port) {
  const bool ok = port == 0 ? (port = http_.bind_to_any_port("127.0.0.1")) > 0
                            : http_.bind_to_port("127.0.0.1", port);
  if (!ok)
    throw Error(ErrorKind::Usage, "cannot listen on 127.0.0.1:" + std::to_string(port) +
                                      " (in use? try --port 0 for any free port)");
  port_ = port;
  return port_;
}

std::string Server::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/?token=" + token_;
}

void Server::run() {
  http_.serve();
}

void Server::stop() {
  http_.stop_now();
}

}  // namespace cloak::web
