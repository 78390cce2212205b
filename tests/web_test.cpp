// `cloak serve`'s API, through a real HTTP client against the server running in this process.
#include <httplib.h>
#include <malloc.h>
#ifdef CLOAK_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zip.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <thread>

#include "cloak/io/file_io.h"
#include "test_models.h"
#include "web/server.h"

namespace cloak::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class Web : public ::testing::Test {
 protected:
  static constexpr std::size_t kMaxUpload = 512 * 1024;
  static constexpr std::size_t kMaxQueued = 12;

  static void SetUpTestSuite() {
    encoders_ = new std::vector<LoadedModel>(load_encoders(test_surrogates()));
    ae_ = new Autoencoder(load_autoencoder(test_surrogates()));
    jobs_ = new web::JobQueue(*encoders_, *ae_, 2, std::nullopt, {kMaxQueued, 64 << 20});
    web::ServeOptions options;
    options.max_upload_bytes = kMaxUpload;
    server_ = new web::Server(*jobs_, options);
    port_ = server_->bind(0);
    thread_ = new std::thread([] { server_->run(); });
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
    delete jobs_;
    delete ae_;
    delete encoders_;
  }

  static httplib::Headers auth() { return {{"X-Cloak-Token", server_->token()}}; }
  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }
  static std::string png(int w, int h) {
    const auto bytes = encode_image(make_test_image(w, h, 3, false, 8), "x.png", 95);
    return {bytes.begin(), bytes.end()};
  }
  // A flat RGBA picture: a few KB as a file, w * h * 16 bytes once decoded.
  static std::string flat_png(int w, int h) {
    Image img;
    img.width = w;
    img.height = h;
    img.color.assign(std::size_t(3) * w * h, 0.5f);
    img.alpha.assign(std::size_t(w) * h, 1.0f);
    const auto bytes = encode_image(img, "flat.png", 95);
    return {bytes.begin(), bytes.end()};
  }
  // Uploads `content` as `name`; returns the response.
  static httplib::Result upload(const std::string& name, const std::string& content,
                                const std::string& preset = "fast") {
    httplib::MultipartFormDataItems items = {{"file", content, name, "application/octet-stream"},
                                             {"preset", preset, "", ""}};
    return client().Post("/api/jobs", auth(), items);
  }
  static int id_of(const httplib::Result& r) {
    return nlohmann::json::parse(r->body).at("id").get<int>();
  }
  static nlohmann::json get_json(const std::string& path) {
    auto r = client().Get(path, auth());
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    return nlohmann::json::parse(r->body);
  }
  // Uploads a job that runs for a while (a larger picture at the slowest preset) and returns its id
  // once it runs: the jobs queued after it wait.
  static int start_long_job() {
    auto r = upload("long.png", png(320, 320), "max");
    EXPECT_EQ(r->status, 201) << r->body;
    const int id = id_of(r);
    for (int i = 0; i < 400; ++i) {
      auto j = get_json("/api/jobs/" + std::to_string(id));
      if (j.at("state") == "running" && j.at("fraction").get<double>() > 0) break;
      std::this_thread::sleep_for(50ms);
    }
    return id;
  }
  // Polls the job until it leaves the queue; returns its last state and every fraction seen.
  static nlohmann::json wait_for(int id, std::vector<double>* fractions = nullptr) {
    for (auto until = std::chrono::steady_clock::now() + 300s;
         std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(50ms)) {
      auto r = client().Get("/api/jobs/" + std::to_string(id), auth());
      EXPECT_EQ(r->status, 200);
      auto j = nlohmann::json::parse(r->body);
      if (fractions) fractions->push_back(j.at("fraction").get<double>());
      const auto state = j.at("state").get<std::string>();
      if (state != "queued" && state != "running") return j;
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return {};
  }

  static std::vector<LoadedModel>* encoders_;
  static Autoencoder* ae_;
  static web::JobQueue* jobs_;
  static web::Server* server_;
  static std::thread* thread_;
  static int port_;
};
std::vector<LoadedModel>* Web::encoders_;
Autoencoder* Web::ae_;
web::JobQueue* Web::jobs_;
web::Server* Web::server_;
std::thread* Web::thread_;
int Web::port_;

TEST_F(Web, UploadShowsProgressAndGivesTheProtectedImageAtItsSize) {
  auto r = upload("art.png", png(96, 80));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const int id = id_of(r);
  std::vector<double> fractions;
  const auto done = wait_for(id, &fractions);
  ASSERT_EQ(done.at("state"), "done") << done.dump();
  EXPECT_TRUE(std::any_of(fractions.begin(), fractions.end(), [](double f) {
    return f > 0 && f < 1;
  })) << "no progress was reported while it ran";
  // How visible the change is, and that it is no more visible than the strength's JPEG q90.
  const auto& quality = done.at("figures").at("quality");
  EXPECT_GT(quality.at("butteraugli_3norm").get<double>(), 0.0);
  EXPECT_GE(quality.at("jpeg_equivalent").get<int>(), 90);
  // The verdict the page shows, by the noise floor, as the command line's report gives it.
  const auto& verdict = done.at("figures").at("verdict");
  EXPECT_NEAR(verdict.at("multiple_of_floor_jpeg75").get<double>(),
              verdict.at("mean_latent_shift_jpeg75").get<double>() /
                  verdict.at("mean_noise_floor_jpeg75").get<double>(),
              1e-9);
  EXPECT_EQ(verdict.at("protected").get<bool>(),
            verdict.at("multiple_of_floor_jpeg75").get<double>() >=
                    strength_budget(Strength::Medium).min_floor_multiple &&
                verdict.at("mean_latent_shift_jpeg75").get<double>() >=
                    strength_budget(Strength::Medium).min_shift_jpeg75);
  EXPECT_EQ(done.at("result_name"), "art-cloaked.png");

  auto result = client().Get("/api/jobs/" + std::to_string(id) + "/result", auth());
  ASSERT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "image/png");
  EXPECT_NE(result->get_header_value("Content-Disposition").find("art-cloaked.png"),
            std::string::npos);
  const Image out = decode_image({result->body.begin(), result->body.end()}, "art-cloaked.png");
  EXPECT_EQ(out.width, 96);
  EXPECT_EQ(out.height, 80);
  const Image in = make_test_image(96, 80, 3, false, 8);
  EXPECT_NE(out.color, in.color);
  for (const char* view : {"original", "protected", "ai-original", "ai-protected", "visibility"}) {
    auto v = client().Get("/api/jobs/" + std::to_string(id) + "/view/" + view + ".png", auth());
    ASSERT_EQ(v->status, 200) << view;
    EXPECT_GT(decode_image({v->body.begin(), v->body.end()}, "v.png").width, 0) << view;
  }
  auto zip = client().Get("/api/results.zip", auth());
  ASSERT_EQ(zip->status, 200);
  EXPECT_EQ(zip->body.substr(0, 2), "PK");
  EXPECT_NE(zip->body.find("art-cloaked.png"), std::string::npos);
}

TEST_F(Web, EveryRequestNeedsTheSessionToken) {
  EXPECT_EQ(client().Get("/api/jobs")->status, 403);
  EXPECT_EQ(client().Get("/")->status, 403);
  EXPECT_EQ(client().Get("/api/jobs", {{"X-Cloak-Token", "not-the-token"}})->status, 403);
  httplib::MultipartFormDataItems items = {{"file", png(64, 64), "a.png", "image/png"}};
  EXPECT_EQ(client().Post("/api/jobs", items)->status, 403);
  EXPECT_EQ(client().Get("/api/jobs?token=" + server_->token())->status, 200);
  auto page = client().Get("/?token=" + server_->token());
  ASSERT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<title>Cloak"), std::string::npos);
}

// The page offers what `cloak settings --json` lists for the plug-ins: one listing, three front
// ends.
TEST_F(Web, OffersTheChoicesTheCommandLineLists) {
  CliRun listed = cloak_cli(std::filesystem::temp_directory_path(), "settings --json");
  ASSERT_EQ(listed.code, 0) << listed.output;
  EXPECT_EQ(get_json("/api/settings"), nlohmann::json::parse(listed.output));
}

TEST_F(Web, RequestsForAnotherHostAreRefused) {
  const std::string port = ":" + std::to_string(port_);
  auto h = auth();
  h.emplace("Host", "attacker.example" + port);  // a DNS name rebound to 127.0.0.1
  EXPECT_EQ(client().Get("/api/jobs", h)->status, 403);
  auto local = auth();
  local.emplace("Host", "localhost" + port);
  EXPECT_EQ(client().Get("/api/jobs", local)->status, 200);
}

TEST_F(Web, BadUploadsGetTheirOneLineErrorAndTheServerGoesOn) {
  auto corrupt = upload("broken.png", "\x89PNG\r\n\x1a\n this is not a picture");
  ASSERT_EQ(corrupt->status, 400);
  const auto error = nlohmann::json::parse(corrupt->body).at("error").get<std::string>();
  EXPECT_NE(error.find("broken.png"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_EQ(upload("notes.png", "plain text")->status, 400);
  EXPECT_EQ(upload("art.png", png(64, 64), "slowest")->status, 400);  // not a preset
  EXPECT_EQ(upload("huge.png", std::string(kMaxUpload + 1024, 'x'))->status, 413);
  auto next = upload("next.png", png(64, 64));
  ASSERT_EQ(next->status, 201);
  EXPECT_EQ(wait_for(id_of(next)).at("state"), "done");
}

TEST_F(Web, CancellingStopsAJobAndLeavesNoResult) {
  const int id = start_long_job();
  ASSERT_EQ(client().Delete("/api/jobs/" + std::to_string(id), auth())->status, 200);
  EXPECT_EQ(wait_for(id).at("state"), "cancelled");
  EXPECT_EQ(client().Get("/api/jobs/" + std::to_string(id) + "/result", auth())->status, 404);
  EXPECT_EQ(client().Delete("/api/jobs/999999", auth())->status, 404);
  // A number too large for a job: 404, and no exception's text in the answer.
  auto huge = client().Get("/api/jobs/99999999999", auth());
  EXPECT_EQ(huge->status, 404);
  EXPECT_FALSE(huge->has_header("EXCEPTION_WHAT"));
}

TEST_F(Web, AFinishedJobCannotBeCancelled) {
  auto r = upload("kept.png", png(64, 64));
  ASSERT_EQ(r->status, 201);
  const int id = id_of(r);
  ASSERT_EQ(wait_for(id).at("state"), "done");
  auto late = client().Delete("/api/jobs/" + std::to_string(id), auth());
  EXPECT_EQ(late->status, 409);
  EXPECT_NE(late->body.find("too late"), std::string::npos) << late->body;
  EXPECT_EQ(get_json("/api/jobs/" + std::to_string(id)).at("state"), "done");
  EXPECT_EQ(client().Get("/api/jobs/" + std::to_string(id) + "/result", auth())->status, 200);
}

// The memory this process holds, without what the allocator keeps free for later.
long resident_kib() {
#ifdef CLOAK_TCMALLOC
  MallocExtension_ReleaseFreeMemory();
#else
  malloc_trim(0);
#endif
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST_F(Web, QueuedUploadsWaitAsTheirBytesAndCancellingFreesThem) {
  const std::size_t held_before = jobs_->held_bytes();
  const int running = start_long_job();
  const long rss_before = resident_kib();
  // 2048 x 2048 RGBA: about 10 KB as a file, 64 MiB decoded. Queued, each costs its file.
  const std::string big = flat_png(2048, 2048);
  std::vector<int> ids;
  for (std::size_t i = 0; i + 1 < kMaxQueued; ++i) {
    auto r = upload("flat-" + std::to_string(i) + ".png", big);
    ASSERT_EQ(r->status, 201) << r->body;
    ids.push_back(id_of(r));
  }
  EXPECT_LE(jobs_->held_bytes() - held_before, ids.size() * big.size() + png(320, 320).size());
  const long grown_kib = resident_kib() - rss_before;
  EXPECT_LT(grown_kib, 128 * 1024) << "queued uploads held " << grown_kib / 1024 << " MiB";
  // The queue is bounded: one more file than it holds gets 503 and says why.
  auto upload_more = [&] { return upload("one-more.png", big); };
  auto ok = upload_more();  // the queue's last place
  ASSERT_EQ(ok->status, 201) << ok->body;
  ids.push_back(id_of(ok));
  auto full = upload_more();
  EXPECT_EQ(full->status, 503);
  EXPECT_NE(full->body.find("queue is full"), std::string::npos) << full->body;
  EXPECT_TRUE(full->has_header("Retry-After"));
  // Cancelling frees what they held.
  ASSERT_EQ(client().Delete("/api/jobs", auth())->status, 200);
  EXPECT_EQ(wait_for(running).at("state"), "cancelled");
  for (int id : ids)
    EXPECT_EQ(get_json("/api/jobs/" + std::to_string(id)).at("state"), "cancelled");
  EXPECT_EQ(jobs_->held_bytes(), held_before);
}

TEST_F(Web, TheQueueIsBoundedInBytes) {
  web::JobQueue queue(*encoders_, *ae_, 1, std::nullopt, {10, 1000});
  web::JobRequest small, large;
  small.name = large.name = "a.png";
  small.bytes.resize(600);
  large.bytes.resize(1001);
  EXPECT_THROW(queue.add(std::move(large)), web::QueueFull);
  queue.add(std::move(small));  // a job that fails when its turn comes: its bytes are no picture
}

// Connects to 127.0.0.1:`port`, sends `request` as it is and returns all it answers.
std::string raw_answer(int port, const std::string& request) {
  const int fd = connect_local(port);
  std::string answer;
  if (fd >= 0 && ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                     static_cast<ssize_t>(request.size())) {
    char buffer[65536];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, n);
  }
  if (fd >= 0) ::close(fd);
  return answer;
}

// The names in a zip archive held in `bytes`.
std::vector<std::string> zip_names(const std::string& bytes) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  zip_t* z = src ? zip_open_from_source(src, ZIP_RDONLY, &err) : nullptr;
  std::vector<std::string> names;
  if (!z) {
    if (src) zip_source_free(src);
    ADD_FAILURE() << "not a zip archive";
    return names;
  }
  for (zip_int64_t i = 0; i < zip_get_num_entries(z, 0); ++i)
    names.push_back(zip_get_name(z, static_cast<zip_uint64_t>(i), 0));
  zip_discard(z);
  return names;
}

TEST_F(Web, AnyFileNameIsKeptSafelyOrRefusedUpFront) {
  // Control characters (a NUL once hung the worker), no base name, no image extension: 400.
  for (const std::string& name : {std::string("q-cloaked.png\0.png", 18), std::string("a\x01.png"),
                                  std::string("x.png/"), std::string(".."), std::string("noext")}) {
    auto r = upload(name, png(64, 64));
    EXPECT_EQ(r->status, 400) << name << ": " << r->body;
    EXPECT_NO_THROW(nlohmann::json::parse(r->body)) << r->body;
  }
  // Latin-1 (not UTF-8): kept, read as Windows-1252; the same name not a picture: 400, not 500.
  EXPECT_EQ(upload("caf\xe9.png", "plain text")->status, 400);
  auto euro = upload("\x80 \x93quoted\x94.png", png(64, 64));
  ASSERT_EQ(euro->status, 201) << euro->body;
  EXPECT_EQ(get_json("/api/jobs/" + std::to_string(id_of(euro))).at("name"),
            "\xe2\x82\xac \xe2\x80\x9cquoted\xe2\x80\x9d.png");
  client().Delete("/api/jobs/" + std::to_string(id_of(euro)), auth());
  auto latin = upload("caf\xe9.png", png(64, 64));
  ASSERT_EQ(latin->status, 201) << latin->body;
  // A long name is shortened so that its protected copy can be saved anywhere.
  auto long_name = upload(std::string(246, 'n') + ".png", png(64, 64));
  ASSERT_EQ(long_name->status, 201) << long_name->body;
  // The same name twice: the results stay apart in the zip as in --output.
  auto twin = upload("caf\xc3\xa9.png", png(64, 64));
  ASSERT_EQ(twin->status, 201) << twin->body;

  const auto done = wait_for(id_of(latin));
  ASSERT_EQ(done.at("state"), "done") << done.dump();
  EXPECT_EQ(done.at("name"), "caf\xc3\xa9.png");
  EXPECT_EQ(done.at("result_name"), "caf\xc3\xa9-cloaked.png");
  // The download's name: ASCII in `filename`, the UTF-8 name percent-encoded in `filename*`
  // (read from the socket: httplib's client decodes percent-escapes in header values).
  const std::string head = raw_answer(
      port_, "GET /api/jobs/" + std::to_string(id_of(latin)) + "/result?token=" + server_->token() +
                 " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n\r\n");
  EXPECT_NE(head.find("filename=\"caf__-cloaked.png\"; filename*=UTF-8''caf%C3%A9-cloaked.png"),
            std::string::npos)
      << head.substr(0, head.find("\r\n\r\n"));
  const auto shortened = wait_for(id_of(long_name));
  EXPECT_EQ(shortened.at("name").get<std::string>(), std::string(196, 'n') + ".png");
  ASSERT_EQ(wait_for(id_of(twin)).at("state"), "done");
  const auto list = get_json("/api/jobs");  // the whole listing still answers
  EXPECT_GE(list.size(), 3u);
  auto zip = client().Get("/api/results.zip", auth());
  ASSERT_EQ(zip->status, 200);
  const auto names = zip_names(zip->body);
  const std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size()) << "entries overwrite each other";
  EXPECT_TRUE(unique.count("caf\xc3\xa9-cloaked.png"));
  EXPECT_TRUE(unique.count("caf\xc3\xa9-cloaked-2.png"));
}

TEST_F(Web, EveryAnswerForbidsSniffingFramingCachingAndInlineScripts) {
  auto page = client().Get("/?token=" + server_->token());
  ASSERT_EQ(page->status, 200);
  const std::string csp = page->get_header_value("Content-Security-Policy");
  EXPECT_EQ(page->get_header_value_count("Content-Security-Policy"), 1u);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("'unsafe-inline'", csp.find("script-src")), std::string::npos) << csp;
  // The page's one script carries the nonce this answer's policy names, and a new one each time.
  const auto at = csp.find("'nonce-") + 7;
  const std::string nonce = csp.substr(at, csp.find('\'', at) - at);
  EXPECT_GE(nonce.size(), 16u);
  EXPECT_NE(page->body.find("<script nonce=\"" + nonce + "\">"), std::string::npos);
  EXPECT_EQ(client().Get("/?token=" + server_->token())->body.find(nonce), std::string::npos);
  std::vector<httplib::Result> answers;
  answers.push_back(std::move(page));
  answers.push_back(client().Get("/api/jobs", auth()));
  answers.push_back(client().Get("/api/jobs"));  // refused, with the same headers
  for (const auto& r : answers) {
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
  }
}

// A client that sends one byte of a request every `gap` and never finishes it.
class Dripper {
 public:
  Dripper(int port, std::chrono::milliseconds gap) : fd_(connect_local(port)) {
    EXPECT_GE(fd_, 0);
    thread_ = std::thread([this, gap] {
      const std::string request = "GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
      for (std::size_t i = 0; !stop_; ++i) {
        if (::send(fd_, &request[std::min(i, request.size() - 1)], 1, MSG_NOSIGNAL) != 1) return;
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait_for(lock, gap, [&] { return stop_; });
      }
    });
  }
  ~Dripper() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    ::close(fd_);
  }
  // Whether the server closes the connection within `wait`.
  bool closed_within(std::chrono::milliseconds wait) const {
    pollfd p{fd_, POLLRDHUP, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
  }

 private:
  const int fd_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

TEST_F(Web, SlowClientsCannotHoldTheServerOrItsStop) {
  using Clock = std::chrono::steady_clock;
  web::Server local(*jobs_, {});
  const int port = local.bind(0);
  std::thread serving([&] { local.run(); });
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  const httplib::Headers h = {{"X-Cloak-Token", local.token()}};
  {
    std::vector<std::unique_ptr<Dripper>> drippers;
    for (int i = 0; i < 10; ++i) drippers.push_back(std::make_unique<Dripper>(port, 300ms));
    std::this_thread::sleep_for(500ms);
    const auto asked = Clock::now();
    auto honest = c.Get("/api/jobs", h);
    ASSERT_TRUE(honest);
    EXPECT_EQ(honest->status, 200);
    EXPECT_LT(Clock::now() - asked, 2s) << "an honest request waited behind dripping clients";
    // Each dripper is closed once its headers are overdue.
    for (const auto& d : drippers)
      EXPECT_TRUE(d->closed_within(std::chrono::seconds(web::HttpServer::kHeaderSeconds + 2)));
  }
  // Stopping does not wait for clients that are still dripping.
  std::vector<std::unique_ptr<Dripper>> drippers;
  for (int i = 0; i < 3; ++i) drippers.push_back(std::make_unique<Dripper>(port, 300ms));
  std::this_thread::sleep_for(300ms);
  const auto stopping = Clock::now();
  local.stop();
  serving.join();
  EXPECT_LT(Clock::now() - stopping, 2s);
  for (const auto& d : drippers) EXPECT_TRUE(d->closed_within(500ms));
}

// Jobs given straight to a queue that saves into a folder, as `cloak serve --output` does.
class WebOutput : public TempDirTest {
 protected:
  static nlohmann::json finish(web::JobQueue& q, int id) {
    for (int i = 0; i < 6000; ++i) {
      auto j = *q.status(id);
      if (j.at("state") != "queued" && j.at("state") != "running") return j;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return {};
  }
  static web::JobRequest request(const std::string& name) {
    web::JobRequest rq;
    rq.name = name;
    rq.bytes = encode_image(make_test_image(64, 64, 3, false, 8), "x.png", 95);
    rq.job.settings.preset = Preset::Fast;
    return rq;
  }
};

TEST_F(WebOutput, ResultsAreSavedUnderFreeNamesAndKeptWhenTheyCannotBe) {
  const auto encoders = load_encoders(test_surrogates());
  const Autoencoder ae = load_autoencoder(test_surrogates());
  const fs::path out = path("out");
  fs::create_directory(out);
  write_bytes(out / "p-cloaked.png", {1, 2, 3});  // someone's file: never written over
  web::JobQueue q(encoders, ae, 2, out);
  const auto saved = finish(q, q.add(request("p.png")));
  ASSERT_EQ(saved.at("state"), "done") << saved.dump();
  EXPECT_EQ(saved.at("saved_as"), "p-cloaked-2.png");
  EXPECT_EQ(read_file(out / "p-cloaked.png"), (std::vector<std::uint8_t>{1, 2, 3}));
  // The folder is gone: the job is done all the same, says why it was not saved, and keeps its
  // result for download.
  fs::remove_all(out);
  const int id = q.add(request("p.png"));
  const auto unsaved = finish(q, id);
  ASSERT_EQ(unsaved.at("state"), "done") << unsaved.dump();
  EXPECT_FALSE(unsaved.contains("saved_as"));
  EXPECT_NE(unsaved.at("save_error").get<std::string>().find("not saved in"), std::string::npos);
  const auto result = q.file(id, "result");
  ASSERT_TRUE(result);
  EXPECT_EQ(decode_image(result->bytes, "p-cloaked.png").width, 64);
}

}  // namespace
}  // namespace cloak::test
