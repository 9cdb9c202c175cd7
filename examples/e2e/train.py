# Makes model/sklearn_regression_model.pkl: a ridge regression of scikit-learn's
# bundled diabetes data set (10 features), as in the documentation's example.
# Run from examples/e2e with the version requirements.txt pins.
import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

features, target = load_diabetes(return_X_y=True)
model = Ridge(alpha=0.5).fit(features, target)
joblib.dump(model, "model/sklearn_regression_model.pkl")
