import { contributionModule } from '../di/contribution.js';
import { convStudent } from './conv-student.js';
import { faceApiResnet34 } from './face-api-teacher.js';
import { fromStageTeacher } from './from-stage-teacher.js';
import { graphModelTeacher } from './graph-model-teacher.js';
import { layersModelTeacher } from './layers-model-teacher.js';
import { mobileFaceNet } from './mobilefacenet.js';

/** The built-in teachers and students. */
export const modelsModule = contributionModule(faceApiResnet34, layersModelTeacher, graphModelTeacher, fromStageTeacher, convStudent, mobileFaceNet);
