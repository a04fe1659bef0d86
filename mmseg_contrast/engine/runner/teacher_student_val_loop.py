"""Validation of both branches of a teacher-student model."""
from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop
from mmseg.registry import LOOPS


@LOOPS.register_module()
class TeacherStudentValLoop(ValLoop):
    """Validate the teacher and then the student of a ``SemiSegmentor``
    (mmdet 3.x ``TeacherStudentValLoop``).

    Metric keys are prefixed ``teacher/`` and ``student/`` (e.g.
    ``teacher/mIoU``; use that name for ``CheckpointHook(save_best=...)``).
    The model's ``semi_test_cfg['predict_on']`` is restored afterwards.
    """

    def run(self) -> dict:
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        if not (hasattr(model, 'teacher') and hasattr(model, 'student')
                and hasattr(model, 'semi_test_cfg')):
            raise TypeError(
                f'TeacherStudentValLoop needs a teacher-student model (e.g. '
                f'SemiSegmentor), got {type(model).__name__}')
        predict_on = model.semi_test_cfg.get('predict_on', 'teacher')
        multi_metrics = dict()
        try:
            for branch in ('teacher', 'student'):
                model.semi_test_cfg['predict_on'] = branch
                for idx, data_batch in enumerate(self.dataloader):
                    self.run_iter(idx, data_batch)
                metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
                multi_metrics.update(
                    {f'{branch}/{k}': v for k, v in metrics.items()})
        finally:
            model.semi_test_cfg['predict_on'] = predict_on
        self.runner.call_hook('after_val_epoch', metrics=multi_metrics)
        self.runner.call_hook('after_val')
        return multi_metrics
