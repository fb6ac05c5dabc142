//! The SNS notifier against the local AWS: a decision's notifications go out in
//! PublishBatch calls of at most ten, in order, each with the attributes subscribers filter on.

use shiplane::aws::{Notification, Notifier, SnsNotifier};
use shiplane::release::{Cause, ReleaseId, StageState, Timestamp, Transition};
use shiplane_e2e::{account, aws_adapters, notifications, pipeline_for, provision, unique_prefix};

fn transition(n: u64) -> Notification {
    let t = Transition {
        at: Timestamp(n),
        service: "api".into(),
        environment: if n.is_multiple_of(2) { "dev" } else { "prod" }.into(),
        release: Some(ReleaseId::new(Timestamp(1_795_519_380_000 + n))),
        from: None,
        to: Some(StageState::Deploying),
        cause: Cause::Arrived,
        actor: None,
        detail: Some(format!("n{n}")),
        alert: None,
    };
    Notification::transition(&t, None)
}

#[tokio::test]
async fn twelve_notifications_go_out_in_order_with_their_attributes() {
    let p = unique_prefix();
    let account = account(&pipeline_for(&p), &format!("{p}-releases"));
    let aws = aws_adapters(&account).await;
    let batch: Vec<Notification> = (0..12).map(transition).collect();
    let failed = aws.notifier.publish_all(&batch).await;
    assert!(failed.is_empty(), "{failed:?}");
    let got = notifications(&account.queue_url);
    let details: Vec<String> = got
        .iter()
        .map(|m| {
            let body: serde_json::Value =
                serde_json::from_str(m["Message"].as_str().unwrap()).unwrap();
            body["detail"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        details,
        (0..12).map(|n| format!("n{n}")).collect::<Vec<_>>()
    );
    for (m, n) in got.iter().zip(0u64..) {
        let attrs = &m["MessageAttributes"];
        assert_eq!(attrs["kind"]["Value"], "stage_started");
        assert_eq!(attrs["service"]["Value"], "api");
        assert_eq!(
            attrs["environment"]["Value"],
            if n.is_multiple_of(2) { "dev" } else { "prod" }
        );
        assert_eq!(attrs["state"]["Value"], "deploying");
    }
    // One alone is one Publish, as before.
    let failed = aws.notifier.publish_all(&batch[..1]).await;
    assert!(failed.is_empty());
    assert_eq!(notifications(&account.queue_url).len(), 1);
}

#[tokio::test]
async fn a_chatbot_topic_gets_the_same_notifications_in_chatbots_schema() {
    let p = unique_prefix();
    let account = account(&pipeline_for(&p), &format!("{p}-releases"));
    let chat = provision(&["topic", "--name", &format!("{p}-chatbot")]);
    let config = shiplane_e2e::aws_config().await;
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&config), &account.topic_arn)
        .with_chatbot_topic(chat["topic_arn"].as_str().map(str::to_string));
    let mut batch: Vec<Notification> = (0..3).map(transition).collect();
    let approval = Transition {
        at: Timestamp(9),
        service: "api".into(),
        environment: "prod".into(),
        release: Some(ReleaseId::new(Timestamp(1_795_519_380_000))),
        from: None,
        to: Some(StageState::AwaitingApproval),
        cause: Cause::Arrived,
        actor: None,
        detail: None,
        alert: None,
    };
    batch.push(Notification::transition(&approval, None));
    let failed = notifier.publish_all(&batch).await;
    assert!(failed.is_empty(), "{failed:?}");

    let main = notifications(&account.queue_url);
    assert_eq!(main.len(), 4, "the main topic keeps Shiplane's body");
    let body: serde_json::Value =
        serde_json::from_str(main[3]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["kind"], "awaiting_approval");

    let chat_msgs = notifications(chat["queue_url"].as_str().unwrap());
    assert_eq!(
        chat_msgs.len(),
        4,
        "every notification, in Chatbot's form too"
    );
    let id = approval.release.as_ref().unwrap();
    let m: serde_json::Value =
        serde_json::from_str(chat_msgs[3]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(
        (m["version"].as_str(), m["source"].as_str()),
        (Some("1.0"), Some("custom"))
    );
    assert_eq!(m["content"]["textType"], "client-markdown");
    assert_eq!(
        m["content"]["nextSteps"][0],
        format!("`shiplane approve {id} prod`").as_str()
    );
    assert_eq!(
        chat_msgs[3]["MessageAttributes"]["kind"]["Value"], "awaiting_approval",
        "the same attributes, so a subscription can filter the Chatbot topic too"
    );
    assert!(chat_msgs[3]["Subject"].as_str().unwrap().len() <= 99);
}
