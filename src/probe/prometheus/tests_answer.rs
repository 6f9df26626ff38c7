//! Reading Prometheus' answers: what is kept, what is counted, what is an
//! error.

use super::*;

fn vector(values: &[&str]) -> String {
    let series: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!(r#"{{"metric":{{"i":"{i}"}},"value":[1.0,"{v}"]}}"#))
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        series.join(",")
    )
}

fn data(body: &str) -> Data {
    match parse(body.as_bytes(), 500) {
        Ok(Reply::Success(data)) => data,
        other => panic!("not a success: {other:?}"),
    }
}

#[test]
fn one_finite_number_is_a_value_anything_else_is_not() {
    assert_eq!(single_value(&data(&vector(&["0.25"]))), Ok(Some(0.25)));
    assert_eq!(single_value(&data(&vector(&[]))), Ok(None));
    assert_eq!(single_value(&data(&vector(&["NaN"]))), Ok(None));
    assert_eq!(single_value(&data(&vector(&["+Inf"]))), Ok(None));
    assert_eq!(single_value(&data(&vector(&["-Inf"]))), Ok(None));
    let scalar = data(r#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}}"#);
    assert_eq!(single_value(&scalar), Ok(Some(3.0)));
    let error = single_value(&data(&vector(&["1", "2", "3"]))).expect_err("three series");
    assert_eq!(
        error,
        "query returns 3 series; aggregate it (sum, max) to one"
    );
    let matrix = data(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#);
    assert!(single_value(&matrix).is_err());
    let text = data(r#"{"status":"success","data":{"resultType":"string","result":[1,"hi"]}}"#);
    assert_eq!(
        single_value(&text),
        Err("query returns a string, not a number".to_owned())
    );
}

#[test]
fn a_range_answer_is_one_series_of_finite_points() {
    let body = r#"{"status":"success","data":{"result":[{"metric":{"a":"b"},
        "values":[[1000,"1"],[1060.5,"NaN"],[1120,"2.5"]]}],"resultType":"matrix"},
        "warnings":["x"]}"#;
    let read = points(&data(body)).expect("one series");
    assert_eq!(read, BTreeMap::from([(1_000_000, 1.0), (1_120_000, 2.5)]));
    let two = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1,"1"]]},{"metric":{},"values":[[1,"2"]]}]}}"#;
    assert!(points(&data(two)).is_err());
    // An instant answer to a range question is one point.
    assert_eq!(
        points(&data(&vector(&["4"]))),
        Ok(BTreeMap::from([(0, 4.0)]))
    );
}

#[test]
fn prometheus_errors_are_its_own_words() {
    let body = r#"{"status":"error","errorType":"bad_data","error":"parse error: unexpected"}"#;
    assert_eq!(
        parse(body.as_bytes(), 500),
        Ok(Reply::Failure {
            error_type: "bad_data".to_owned(),
            message: "parse error: unexpected".to_owned(),
        })
    );
    let null_data =
        r#"{"status":"error","data":null,"errorType":"timeout","error":"query timed out"}"#;
    assert!(matches!(
        parse(null_data.as_bytes(), 500),
        Ok(Reply::Failure { .. })
    ));
}

#[test]
fn past_the_series_cap_reading_stops() {
    let many: Vec<String> = (0..600).map(|i| i.to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        parse(vector(&many).as_bytes(), 500),
        Err(Unusable::TooManySeries(500))
    );
    // At the cap: counted, and the first series kept.
    match parse(vector(&many[..500]).as_bytes(), 500) {
        Ok(Reply::Success(Data::Vector(series))) => {
            assert_eq!(series.count, 500);
            assert_eq!(series.first, vec![(1.0, 0.0)]);
        }
        other => panic!("{other:?}"),
    }
    // Stopping early is not mistaken for a body cut short.
    let cut = &vector(&many)[..2000];
    assert!(matches!(
        parse(cut.as_bytes(), 500),
        Err(Unusable::Malformed(_))
    ));
}

#[test]
fn what_is_not_an_api_answer_is_malformed() {
    for body in [
        "<html>login</html>",
        "{}",
        r#"{"status":"success"}"#,
        r#"{"status":"success","data":{"resultType":"vector","result":[1,"2"]}}"#,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}}"#,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}} trailing"#,
    ] {
        assert!(
            matches!(parse(body.as_bytes(), 500), Err(Unusable::Malformed(_))),
            "{body}"
        );
    }
}

#[test]
fn native_histograms_are_not_numbers() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{},"histogram":[1,{"count":"3","sum":"1","buckets":[]}]}]}}"#;
    let error = single_value(&data(body)).expect_err("a histogram");
    assert!(error.contains("histogram_quantile"), "{error}");
}
