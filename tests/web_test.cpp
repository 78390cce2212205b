// `cloak serve`'s API, through a real HTTP client against the server running in this process.
#include <httplib.h>

#include <chrono>
#include <thread>

#include "test_models.h"
#include "web/server.h"

namespace cloak::test {
namespace {

using namespace std::chrono_literals;

class Web : public ::testing::Test {
 protected:
  static constexpr std::size_t kMaxUpload = 512 * 1024;

  static void SetUpTestSuite() {
    encoders_ = new std::vector<LoadedModel>(load_encoders(test_surrogates()));
    ae_ = new Autoencoder(load_autoencoder(test_surrogates()));
    jobs_ = new web::JobQueue(*encoders_, *ae_, 2, std::nullopt);
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
  auto r = upload("big.png", png(320, 320), "max");
  ASSERT_EQ(r->status, 201);
  const int id = id_of(r);
  for (int i = 0; i < 400; ++i) {  // until it has started
    auto j = nlohmann::json::parse(client().Get("/api/jobs/" + std::to_string(id), auth())->body);
    if (j.at("state") == "running" && j.at("fraction").get<double>() > 0) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(client().Delete("/api/jobs/" + std::to_string(id), auth())->status, 200);
  EXPECT_EQ(wait_for(id).at("state"), "cancelled");
  EXPECT_EQ(client().Get("/api/jobs/" + std::to_string(id) + "/result", auth())->status, 404);
  EXPECT_EQ(client().Delete("/api/jobs/999999", auth())->status, 404);
}

}  // namespace
}  // namespace cloak::test
